"""The ingestion pipeline: decode -> validate -> deduplicate -> persist in batches -> acknowledge.

Each stage is its own module. The MQTT entrance (`mqtt_source`) and, later, the HTTP entrance
hand `Delivery` objects to the same stages, so both share one validation and storage path.
"""
