"""A barcode as typed or scanned, in its canonical form.

Keyboard-wedge scanners frame what they read: an AIM symbology identifier in front (``]C1``
for GS1-128, ``]A0`` for Code 39, ``]d2`` for Data Matrix: a ``]``, a letter and one more
character), STX/ETX around it, a tab or CR/LF after it; people type with stray spaces and in
lower case. The canonical form is what is left between the framing, in upper case: the
letters, digits and ``= + & % . _ -`` of the contract's ``Barcode`` (specimen barcodes and
ISBT 128 donation numbers are printed in upper case).

``canonical_barcode`` is the one place this is decided: the contract's ``Barcode`` type
applies it to every message on MQTT and HTTP, the API's barcode path and body fields apply it,
and ``dashboards/js/scan_field.js`` mirrors it (``tests/data/barcode_cases.json`` holds the
cases both run). A value that is not a barcode after this is still refused by the contract's
pattern: normalising never turns garbage into a barcode, it only removes the framing.
"""

import re
from string import ascii_lowercase, ascii_uppercase

# surrounding whitespace and control characters (STX, ETX, CR, LF, tab, NUL, GS, EOT ...)
_FRAMING = "".join(chr(c) for c in range(0x21)) + "\x7f"
# an AIM symbology identifier: "]" + the symbology's letter + a modifier character
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9A-Za-z]")
# ASCII only: str.upper() maps "ı" to "I" and "ß" to "SS", which would make a barcode of them
_UPPER = str.maketrans(ascii_lowercase, ascii_uppercase)


def canonical_barcode(raw: str) -> str:
    """`raw` without a scanner's framing and surrounding whitespace, in upper case."""
    value = raw.strip(_FRAMING)
    value = _AIM_PREFIX.sub("", value, count=1)
    return value.strip(_FRAMING).translate(_UPPER)
