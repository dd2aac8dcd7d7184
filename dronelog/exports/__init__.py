"""Exports of a specimen's journey in the standards others read: an HL7 FHIR R5 Bundle and a
GS1 EPCIS 2.0 document (docs/exports.md). `journey` reads the database once into plain values;
`fhir` and `epcis` are pure functions of that journey."""
