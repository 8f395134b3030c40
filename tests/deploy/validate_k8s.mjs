// Validates Kubernetes objects (a JSON array on stdin) with the pinned kubernetes-models package
// (scripts/deps.lock): each object by the model class of its apiVersion and kind, KServe's
// containers by the core Container model. Prints one JSON line per object: {kind, name, errors}.
// kubernetes-models' validators are compiled from the Kubernetes OpenAPI schemas (ajv).
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";

const require = createRequire(process.env.DERMCDS_NODE_MODULES + "/");
const objects = JSON.parse(readFileSync(0, "utf8"));

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

function validateWith(modulePath, className, value) {
  const Model = require(modulePath)[className];
  try {
    new Model(value).validate();
    return [];
  } catch (e) {
    return [String(e.message || e)];
  }
}

for (const object of objects) {
  const { apiVersion, kind } = object;
  const name = object.metadata?.name;
  let errors = [];
  if (apiVersion.startsWith("serving.kserve.io/")) {
    // The CRD itself is checked against our schema in Python; its pod parts are core types.
    const containers = object.spec?.containers ?? object.spec?.predictor?.containers ?? [];
    for (const container of containers) errors.push(...validateWith("kubernetes-models/v1/Container", "Container", container));
    console.log(JSON.stringify({ kind, name, errors, validator: "kubernetes-models Container" }));
    continue;
  }
  let path;
  try {
    path = modelPath(apiVersion, kind);
    require.resolve(path);
  } catch {
    console.log(JSON.stringify({ kind, name, errors: [`no kubernetes-models class for ${apiVersion} ${kind}`] }));
    continue;
  }
  errors = validateWith(path, kind, object);
  console.log(JSON.stringify({ kind, name, errors, validator: path }));
}
