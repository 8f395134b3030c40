// The clinician's page: send a photo to POST /v1/classify and show what came back.
'use strict';

// Chart geometry, in SVG user units (one per CSS pixel): a label column, then a track of
// BAR_WIDTH on which each class's bar is drawn to probability * BAR_WIDTH.
const LABEL_WIDTH = 230;
const BAR_WIDTH = 360;
const ROW_HEIGHT = 30;
const BAR_HEIGHT = 18;
const VALUE_WIDTH = 70;

const TIERS = {
  urgent_referral: {text: 'Urgent referral', css: 'tier-urgent'},
  dermatology_review: {text: 'Dermatology review', css: 'tier-review'},
  routine: {text: 'Routine follow-up', css: 'tier-routine'},
};

const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

function percent(p) {
  return (100 * p).toFixed(p >= 0.1 ? 1 : 2) + '%';
}

function setStatus(text) {
  $('status').textContent = text;
}

function showError(message) {
  const box = $('error');
  box.textContent = message;
  box.hidden = false;
  $('result').hidden = true;
  setStatus('');
}

function clearError() {
  $('error').hidden = true;
  $('error').textContent = '';
}

async function loadModels() {
  const select = $('model');
  try {
    const response = await fetch('/v1/models');
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const listing = await response.json();
    select.replaceChildren();
    for (const model of listing.models.filter((m) => m.ready)) {
      const option = document.createElement('option');
      option.value = model.name;
      option.textContent = model.name + ' (version ' + model.active_version + ')';
      option.selected = model.name === listing.default_model;
      select.append(option);
    }
    if (select.options.length === 0) showError('No model is ready on this service yet. Try again in a moment.');
  } catch (error) {
    showError('The list of models could not be loaded: ' + error.message);
  }
}

function drawChart(probabilities, top1Code) {
  const chart = $('chart');
  chart.querySelectorAll('g').forEach((g) => g.remove());
  const width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH;
  const height = probabilities.length * ROW_HEIGHT;
  chart.setAttribute('viewBox', `0 0 ${width} ${height}`);
  chart.setAttribute('width', width);
  chart.setAttribute('height', height);
  probabilities.forEach((entry, row) => {
    const y = row * ROW_HEIGHT;
    const barY = y + (ROW_HEIGHT - BAR_HEIGHT) / 2;
    const g = svgElement('g', {class: 'row' + (entry.code === top1Code ? ' top1' : ''), 'data-code': entry.code});
    g.append(svgElement('text', {x: LABEL_WIDTH - 8, y: y + ROW_HEIGHT / 2, class: 'label'}, `${entry.name} (${entry.code})`));
    g.append(svgElement('rect', {x: LABEL_WIDTH, y: barY, width: BAR_WIDTH, height: BAR_HEIGHT, class: 'track'}));
    g.append(svgElement('rect', {
      x: LABEL_WIDTH, y: barY, width: entry.probability * BAR_WIDTH, height: BAR_HEIGHT, class: 'bar',
      'data-probability': entry.probability,
    }));
    g.append(svgElement('text', {x: LABEL_WIDTH + BAR_WIDTH + 8, y: y + ROW_HEIGHT / 2, class: 'value'},
                        percent(entry.probability)));
    g.append(svgElement('title', {}, `${entry.name}: ${percent(entry.probability)}`));
    chart.append(g);
  });
}

function showResult(result) {
  const tier = TIERS[result.triage.tier] || {text: result.triage.tier, css: 'tier-other'};
  const triage = $('triage');
  triage.className = 'tier ' + tier.css;
  triage.textContent = tier.text;
  triage.dataset.tier = result.triage.tier;

  // Not assessable (docs/safety.md): say why and what to do; the probabilities are not a reading.
  const assessable = !result.assessment || result.assessment.status === 'assessable';
  const assessment = $('assessment');
  assessment.hidden = assessable;
  assessment.dataset.status = result.assessment ? result.assessment.status : 'assessable';
  if (!assessable) {
    triage.className = 'tier tier-not-assessable';
    triage.textContent = 'Not assessable: retake the photograph';
    $('assessment-title').textContent =
      'This photograph cannot be assessed, so no triage tier is suggested. Retake it: in focus, evenly lit, ' +
      'the lesion filling the frame.';
    const reasons = $('assessment-reasons');
    reasons.replaceChildren();
    for (const reason of result.assessment.reasons) {
      const item = document.createElement('li');
      item.textContent = reason.message;
      item.dataset.code = reason.code;
      reasons.append(item);
    }
  }

  $('top1').textContent = `Most probable: ${result.top1.name} (${result.top1.code}), ${percent(result.top1.probability)}. ` +
    `Distance of the probabilities from the nearest triage threshold: ${result.triage.margin.toFixed(3)}.`;
  drawChart(result.probabilities, result.top1.code);

  const facts = [
    ['Model', result.model_name],
    ['Version', result.model_version],
    ['Runtime', `${result.runtime} ${result.runtime_version}`],
    ['Execution provider', result.execution_provider],
    ['Precision', result.precision],
    ['Time', `${result.timings_ms.total.toFixed(1)} ms (inference ${result.timings_ms.inference.toFixed(1)} ms, ` +
             `batch of ${result.batch_size})`],
    ['Request id', result.request_id],
  ];
  if (result.fallbacks.length) facts.push(['Fallbacks', result.fallbacks.join('; ')]);
  const list = $('provenance');
  list.replaceChildren();
  for (const [term, value] of facts) {
    const dt = document.createElement('dt');
    dt.textContent = term;
    const dd = document.createElement('dd');
    dd.textContent = value;
    dd.dataset.field = term.toLowerCase().replace(/ /g, '_');
    list.append(dt, dd);
  }
  $('result').hidden = false;
  setStatus('Classified.');
}

async function classify(file) {
  clearError();
  if (!file) return;
  const preview = $('preview');
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;

  // The file's own name often names the patient; the service has no use for it.
  const form = new FormData();
  form.append('image', file, file.type === 'image/png' ? 'photo.png' : 'photo.jpg');
  if ($('model').value) form.append('model', $('model').value);
  setStatus('Classifying…');
  let response;
  try {
    response = await fetch('/v1/classify', {method: 'POST', body: form});
  } catch (error) {
    showError('The service could not be reached: ' + error.message);
    return;
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) {
    const reason = body && body.error ? body.error : `HTTP ${response.status}`;
    showError(`The photo could not be classified (${response.status}): ${reason}`);
    return;
  }
  showResult(body);
}

function setUpDropZone() {
  const drop = $('drop');
  const input = $('file');
  input.addEventListener('change', () => classify(input.files[0]));
  drop.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' || event.key === ' ') {
      event.preventDefault();
      input.click();
    }
  });
  for (const name of ['dragenter', 'dragover']) {
    drop.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add('dragging');
    });
  }
  drop.addEventListener('dragleave', () => drop.classList.remove('dragging'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('dragging');
    classify(event.dataTransfer.files[0]);
  });
}

setUpDropZone();
loadModels();
