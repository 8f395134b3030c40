"""deploy/kubernetes rendered offline and validated (docs/deploy.md).

Every kustomization is rendered by `kubectl kustomize` (no cluster needed); the Kubernetes
objects are validated by the pinned kubernetes-models package (compiled from the Kubernetes
OpenAPI schemas), KServe's by our schema of its CRDs (kserve_schemas.json) plus
kubernetes-models for their containers. Then the properties the deployment depends on are
checked: the probes name the service's real health paths, the HPA's metric is the one the
adapter rule defines from a metric the service exports, the grace period outlasts the preStop
wait, the pod runs as non-root on a read-only root filesystem, the KServe runtime is what KServe
expects (kserve-container, v2, onnx and tflite).
"""
import copy
import json
import os
import re
import shutil
import subprocess
import unittest

import jsonschema
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
KUSTOMIZATIONS = ["deploy/kubernetes/base", "deploy/kubernetes/overlays/clinic",
                  "deploy/kubernetes/overlays/hospital-gpu", "deploy/kubernetes/kserve"]
NODE_MODULES = os.environ.get("DERMCDS_NODE_MODULES", os.path.join(ROOT, ".deps", "kubernetes-models", "node_modules"))


def render(path):
    out = subprocess.run(["kubectl", "kustomize", os.path.join(ROOT, path)], capture_output=True, text=True,
                         timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"kubectl kustomize {path} failed: {out.stderr}")
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def validate_k8s(objects):
    p = subprocess.run(["node", os.path.join(HERE, "validate_k8s.mjs")], input=json.dumps(objects),
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, DERMCDS_NODE_MODULES=NODE_MODULES))
    if p.returncode != 0:
        raise AssertionError(f"validate_k8s.mjs failed: {p.stderr}")
    return [json.loads(line) for line in p.stdout.splitlines()]


@unittest.skipUnless(shutil.which("kubectl"), "kubectl is not installed (Debian: kubernetes-client)")
class Manifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(os.path.join(NODE_MODULES, "kubernetes-models")):
            raise unittest.SkipTest(f"kubernetes-models is not in {NODE_MODULES}: run scripts/provision.sh")
        cls.rendered = {path: render(path) for path in KUSTOMIZATIONS}
        with open(os.path.join(HERE, "kserve_schemas.json")) as f:
            cls.kserve = json.load(f)

    def kserve_errors(self, obj):
        schema = dict(self.kserve[obj["kind"] if obj["kind"] != "ServingRuntime" else "ClusterServingRuntime"])
        schema["$defs"] = self.kserve["$defs"]
        return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(obj)]

    def test_every_object_of_every_overlay_is_valid(self):
        for path, objects in self.rendered.items():
            for result in validate_k8s(objects):
                self.assertEqual(result["errors"], [], f"{path}: {result['kind']} {result['name']}")
            for obj in objects:
                if obj["apiVersion"].startswith("serving.kserve.io/"):
                    self.assertEqual(self.kserve_errors(obj), [], f"{path}: {obj['kind']}")

    def test_the_validators_refuse_broken_objects(self):
        objects = self.rendered["deploy/kubernetes/base"]
        deployment = copy.deepcopy(next(o for o in objects if o["kind"] == "Deployment"))
        deployment["spec"]["replicas"] = "two"
        deployment["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
        result = validate_k8s([deployment])[0]
        self.assertNotEqual(result["errors"], [])
        runtime = copy.deepcopy(next(o for o in self.rendered["deploy/kubernetes/kserve"]
                                     if o["kind"] == "ClusterServingRuntime"))
        runtime["spec"]["protocolVersions"] = ["v3"]
        runtime["spec"]["supportedModelFormat"] = runtime["spec"].pop("supportedModelFormats")
        self.assertGreaterEqual(len(self.kserve_errors(runtime)), 2)

    def test_the_deployment_is_what_the_service_needs(self):
        for path in KUSTOMIZATIONS[:3]:
            objects = self.rendered[path]
            deployment = next(o for o in objects if o["kind"] == "Deployment")
            pod = deployment["spec"]["template"]["spec"]
            container = pod["containers"][0]
            self.assertEqual(container["readinessProbe"]["httpGet"]["path"], "/v2/health/ready")
            self.assertEqual(container["livenessProbe"]["httpGet"]["path"], "/v2/health/live")
            startup = container["startupProbe"]
            self.assertGreaterEqual(startup["periodSeconds"] * startup["failureThreshold"], 120)
            # The gRPC health probe asks the port the service is told to serve gRPC on, and the
            # Service exposes that port.
            grpc_port = int(next(a for a in container["args"] if a.startswith("--grpc-port=")).split("=", 1)[1])
            self.assertEqual(startup["grpc"]["port"], grpc_port)
            self.assertIn(grpc_port, [p["containerPort"] for p in container["ports"]])
            service = next(o for o in objects if o["kind"] == "Service")
            port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
            targets = [port_names.get(p["targetPort"], p["targetPort"]) for p in service["spec"]["ports"]]
            self.assertIn(grpc_port, targets)
            self.assertGreater(pod["terminationGracePeriodSeconds"],
                               container["lifecycle"]["preStop"]["sleep"]["seconds"])
            self.assertTrue(pod["securityContext"]["runAsNonRoot"])
            self.assertTrue(container["securityContext"]["readOnlyRootFilesystem"])
            self.assertIn("--repository=/models", container["args"])
            self.assertTrue(any(a.startswith("--repository-poll-secs=") for a in container["args"]))
            mount = next(m for m in container["volumeMounts"] if m["mountPath"] == "/models")
            self.assertTrue(mount["readOnly"])
            claim = next(o for o in objects if o["kind"] == "PersistentVolumeClaim")
            self.assertEqual(claim["spec"]["accessModes"], ["ReadOnlyMany"])
            self.assertEqual(deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0)
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            for kind in ("Service", "PodDisruptionBudget"):
                obj = next(o for o in objects if o["kind"] == kind)
                selector = obj["spec"]["selector"].get("matchLabels", obj["spec"]["selector"])
                self.assertTrue(selector and all(labels.get(k) == v for k, v in selector.items()), kind)

    def test_the_autoscaler_metric_comes_from_a_metric_the_service_exports(self):
        objects = self.rendered["deploy/kubernetes/base"]
        hpa = next(o for o in objects if o["kind"] == "HorizontalPodAutoscaler")
        metric = hpa["spec"]["metrics"][0]["pods"]["metric"]["name"]
        rules = yaml.safe_load(next(o for o in objects if o["kind"] == "ConfigMap")["data"]["rules.yaml"])["rules"]
        rule = next(r for r in rules if r["name"]["as"] == metric)
        series = re.match(r"(\w+)\{", rule["seriesQuery"]).group(1)
        base = series.removesuffix("_count")
        with open(os.path.join(ROOT, "service", "service_metrics.cpp")) as f:
            self.assertIn(f'"{base}"', f.read(), "the adapter rule names a metric the service does not export")
        self.assertIn('stage="queue"', rule["metricsQuery"])

    def test_the_kserve_runtime_is_what_kserve_expects(self):
        objects = self.rendered["deploy/kubernetes/kserve"]
        runtime = next(o for o in objects if o["kind"] == "ClusterServingRuntime")
        self.assertEqual(runtime["spec"]["containers"][0]["name"], "kserve-container")
        self.assertIn("--repository=/mnt/models", runtime["spec"]["containers"][0]["args"])
        self.assertIn("v2", runtime["spec"]["protocolVersions"])
        self.assertIn("grpc-v2", runtime["spec"]["protocolVersions"])
        self.assertTrue(any(a.startswith("--grpc-port=") for a in runtime["spec"]["containers"][0]["args"]))
        self.assertEqual({f["name"] for f in runtime["spec"]["supportedModelFormats"]}, {"onnx", "tflite"})
        self.assertIn("prometheus.kserve.io/port", runtime["metadata"]["annotations"])
        service = next(o for o in objects if o["kind"] == "InferenceService")
        model = service["spec"]["predictor"]["model"]
        self.assertEqual(model["runtime"], runtime["metadata"]["name"])
        self.assertTrue(model["storageUri"].startswith("pvc://"))


if __name__ == "__main__":
    unittest.main()
