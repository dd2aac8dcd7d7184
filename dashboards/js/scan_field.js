// A field for a scanned code: a keyboard-wedge scanner types the code and presses Enter, a
// person types it; where the browser has barcode detection (BarcodeDetector), a camera button
// reads it through the phone's camera. Without BarcodeDetector the button is not shown.

import {h} from './dom.js';
import {t} from './i18n.js';

const PATTERN = '[A-Za-z0-9=+&%._\\-]{1,64}';
const FRAMING = /^[\x00-\x20\x7f]+|[\x00-\x20\x7f]+$/g; // spaces and controls: STX, ETX, CR, LF, tab
const AIM_PREFIX = /^\][A-Za-z][0-9A-Za-z]/; // a symbology identifier such as "]C1"

/** A typed or scanned barcode in its canonical form: the mirror of canonical_barcode in
 * dronelog/domain/barcodes.py (tests/data/barcode_cases.json holds the cases both run). */
export function canonicalBarcode(raw) {
  const value = String(raw).replace(FRAMING, '').replace(AIM_PREFIX, '').replace(FRAMING, '');
  return value.replace(/[a-z]+/g, (letters) => letters.toUpperCase()); // ASCII only, like the server
}

/** {el, input}: `onScan(value)` runs on Enter (and after a camera read) with the value as
 * `normalise` leaves it (barcode fields pass canonicalBarcode; ids keep their case). */
export function scanField({id, label, onScan, pattern = PATTERN, required = true, normalise = (value) => value.trim()}) {
  const input = h('input', {id, name: id, autocomplete: 'off', autocapitalize: 'characters', spellcheck: 'false',
    required, pattern, maxlength: 64, inputmode: 'text', enterkeyhint: 'done'});
  input.addEventListener('keydown', (event) => {
    if (event.key !== 'Enter') return;
    event.preventDefault();
    input.value = normalise(input.value);
    if (input.value && input.checkValidity()) onScan?.(input.value);
  });
  const camera = 'BarcodeDetector' in window
    ? h('button', {type: 'button', class: 'secondary camera-button', 'aria-label': t('scan.camera.label', {what: label}),
      onclick: () => readWithCamera(input, onScan, normalise)}, t('scan.camera'))
    : null;
  return {el: h('div', {class: 'field'}, h('label', {for: id}, label), h('div', {class: 'scan-row'}, input, camera)), input};
}

async function readWithCamera(input, onScan, normalise) {
  let stream;
  const video = h('video', {class: 'camera-video', autoplay: true, muted: true, playsinline: true});
  const stop = h('button', {type: 'button', class: 'secondary'}, t('close'));
  const overlay = h('div', {class: 'camera-overlay', role: 'dialog', 'aria-label': t('scan.camera')}, video, stop);
  let open = true;
  const close = () => {
    open = false;
    stream?.getTracks().forEach((track) => track.stop());
    overlay.remove();
    input.focus();
  };
  stop.addEventListener('click', close);
  document.body.append(overlay);
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment'}});
    video.srcObject = stream;
    const detector = new window.BarcodeDetector();
    while (open) {
      const codes = await detector.detect(video).catch(() => []);
      if (codes.length) {
        input.value = normalise(codes[0].rawValue);
        close();
        onScan?.(input.value);
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  } catch {
    close(); // no camera, or permission refused: typing still works
  }
}
