"""The Open Inference Protocol, end to end against a running pms-derm-cds on the demo model.

Every REST response body is validated with jsonschema against schemas/open_inference_rest.schema.json
(written from the protocol specification's component schemas). gRPC is called through Python
stubs generated here, at test time, from the project's own proto files (service/grpc/proto) with
protoc and Debian's grpc_python_plugin. The same two photographs, preprocessed by the reference
transform (Pillow + torchvision, no derm-cds code), are sent as JSON, as binary tensors and over
gRPC (typed and raw): the logits must be identical, and differ between the two photographs
(the trained demo network tells them apart). Bad inputs on each path get 400 / INVALID_ARGUMENT
naming the problem, and the server keeps answering.

usage: protocol_conformance.py --server BIN --repository DIR --model NAME --proto-dir DIR
                               --work-dir DIR IMAGE IMAGE
"""

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import time

import jsonschema
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "python"))
from dermcds_export.reference_transform import preprocess_file  # noqa: E402

HUGE_BATCHES = [1152921504606846977, 2 ** 40, 2 ** 31, 2 ** 63 - 1]

failures = []
checks = [0]


def check(condition, what):
    checks[0] += 1
    if not condition:
        failures.append(what)
        print("FAIL: " + what, flush=True)
    return condition


class Rest:
    def __init__(self, port, schema):
        self.port = port
        self.schema = schema

    def request(self, method, path, body=None, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        result = (response.status, dict((k.lower(), v) for k, v in response.getheaders()), data)
        connection.close()
        return result

    def validate(self, document, definition, what):
        validator = jsonschema.Draft202012Validator({"$ref": "#/$defs/" + definition, "$defs": self.schema["$defs"]})
        errors = [e.message for e in validator.iter_errors(document)]
        return check(not errors, what + " matches " + definition + ": " + "; ".join(errors[:3]))

    def json(self, method, path, body=None, headers=None, definition=None, status=200):
        code, response_headers, data = self.request(method, path, body, headers)
        check(code == status, "%s %s answers %d (got %d: %s)" % (method, path, status, code, data[:200]))
        document = json.loads(data) if data else None
        if definition:
            self.validate(document, definition, "%s %s" % (method, path))
        return document

    def error(self, method, path, body, status, says, headers=None):
        """A 4xx/5xx with exactly the protocol's error object, naming the problem."""
        code, _, data = self.request(method, path, body, headers)
        check(code == status, "%s: %d expected, got %d (%s)" % (says, status, code, data[:200]))
        try:
            document = json.loads(data)
        except ValueError:
            check(False, "%s: the error body is JSON (got %r)" % (says, data[:100]))
            return
        self.validate(document, "error_response", "error for " + says)
        check(isinstance(document, dict) and list(document) == ["error"],
              "error object has only \"error\": %s" % document)
        check(says.lower() in document.get("error", "").lower(), "error names %r: %s" % (says, document.get("error")))


def generate_stubs(proto_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    subprocess.run(["protoc", "--proto_path=" + proto_dir, "--python_out=" + out_dir,
                    "--grpc_python_out=" + out_dir, "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin",
                    os.path.join(proto_dir, "open_inference.proto"), os.path.join(proto_dir, "health.proto")],
                   check=True)
    sys.path.insert(0, out_dir)


def wait_for_file(path, process, seconds):
    deadline = time.monotonic() + seconds
    while not (os.path.exists(path) and open(path).read().strip()):
        if process.poll() is not None:
            sys.exit("pms-derm-cds exited early (status %d)" % process.returncode)
        if time.monotonic() > deadline:
            sys.exit("pms-derm-cds did not start within %d s" % seconds)
        time.sleep(0.05)
    return int(open(path).read().strip())


def binary_body(header, payload):
    text = json.dumps(header).encode()
    return text + payload, {"Inference-Header-Content-Length": str(len(text)),
                            "Content-Type": "application/octet-stream"}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--repository", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--work-dir", required=True)
    parser.add_argument("images", nargs=2)
    args = parser.parse_args()

    model_dir = os.path.join(args.repository, args.model)
    if not os.path.isdir(model_dir):
        sys.exit("the model repository has no %s (run `make models`): %s" % (args.model, model_dir))
    with open(os.path.join(HERE, "schemas", "open_inference_rest.schema.json")) as f:
        schema = json.load(f)
    generate_stubs(args.proto_dir, os.path.join(args.work_dir, "stubs"))
    import grpc
    import health_pb2
    import health_pb2_grpc
    import open_inference_pb2 as pb
    import open_inference_pb2_grpc as pb_grpc

    port_file = os.path.join(args.work_dir, "port")
    grpc_port_file = os.path.join(args.work_dir, "grpc.port")
    for path in (port_file, grpc_port_file):
        if os.path.exists(path):
            os.remove(path)
    log = open(os.path.join(args.work_dir, "server.log"), "w")
    server = subprocess.Popen([args.server, "--repository", args.repository, "--model", args.model,
                               "--default-model", args.model, "--port", "0", "--port-file", port_file,
                               "--grpc-port", "0", "--grpc-port-file", grpc_port_file, "--no-banner",
                               "--warmup-runs", "1"], stdout=log, stderr=log)
    try:
        port = wait_for_file(port_file, server, 300)
        grpc_port = wait_for_file(grpc_port_file, server, 10)
        rest = Rest(port, schema)
        deadline = time.monotonic() + 300
        while rest.request("GET", "/v2/health/ready")[0] != 200:
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("pms-derm-cds did not become ready")
            time.sleep(0.1)
        run_checks(args, rest, grpc_port, grpc, pb, pb_grpc, health_pb2, health_pb2_grpc)
    finally:
        server.send_signal(signal.SIGTERM)
        status = server.wait(timeout=120)
        check(status == 0, "pms-derm-cds exits 0 on SIGTERM (got %s)" % status)
    if failures:
        print("%d of %d checks failed" % (len(failures), checks[0]))
        sys.exit(1)
    print("protocol conformance: all %d checks passed" % checks[0])


def run_checks(args, rest, grpc_port, grpc, pb, pb_grpc, health_pb2, health_pb2_grpc):
    model = args.model
    infer_path = "/v2/models/%s/infer" % model

    # Health, server and model metadata.
    for path in ("/v2/health/live", "/v2/health/ready", "/v2/models/%s/ready" % model):
        code, _, data = rest.request("GET", path)
        check(code == 200 and data == b"", "GET %s: 200 with no body" % path)
    server_metadata = rest.json("GET", "/v2/", definition="metadata_server_response")
    check(rest.json("GET", "/v2", definition="metadata_server_response") == server_metadata, "/v2 and /v2/ agree")
    check("binary_tensor_data" in server_metadata["extensions"], "binary_tensor_data is listed as an extension")
    metadata = rest.json("GET", "/v2/models/" + model, definition="metadata_model_response")
    version = metadata["versions"][0]
    rest.json("GET", "/v2/models/%s/versions/%s" % (model, version), definition="metadata_model_response")
    input_meta = metadata["inputs"][0]
    output_name = metadata["outputs"][0]["name"]
    shape = input_meta["shape"]
    check(input_meta["datatype"] == "FP32" and len(shape) == 4 and shape[0] == -1, "input metadata: %s" % input_meta)
    rest.error("GET", "/v2/models/unknown", None, 404, "unknown")
    rest.error("GET", "/v2/models/unknown/ready", None, 404, "unknown model")
    rest.error("GET", "/v2/no/such/endpoint", None, 404, "no such endpoint")

    # The two photographs, preprocessed by the reference transform, in the model's layout.
    with open(os.path.join(args.repository, model, version, "manifest.json")) as f:
        manifest = json.load(f)
    images = [preprocess_file(path, manifest["input"]).numpy() for path in args.images]
    if shape[1] != 3:  # NHWC
        images = [np.transpose(image, (1, 2, 0)) for image in images]
    batch = np.ascontiguousarray(np.stack(images).astype(np.float32))
    check(list(batch.shape[1:]) == shape[1:], "the tensor has the model's shape %s" % shape)
    dims = list(batch.shape)
    raw = batch.astype("<f4").tobytes()

    # JSON.
    request = {"id": "conformance", "inputs": [{"name": input_meta["name"], "shape": dims, "datatype": "FP32",
                                               "data": batch.ravel().tolist()}],
               "outputs": [{"name": output_name}]}
    answer = rest.json("POST", infer_path, json.dumps(request), {"Content-Type": "application/json"},
                       definition="inference_response")
    logits = np.array(answer["outputs"][0]["data"], dtype=np.float32)
    classes = len(logits) // 2
    check(answer["outputs"][0]["shape"] == [2, classes], "logits shape [2, %d]" % classes)
    check(float(np.max(np.abs(logits[:classes] - logits[classes:]))) > 1e-3,
          "the demo model answers the two photographs differently: %s" % logits.tolist())
    check(answer["id"] == "conformance", "the id is echoed")

    # Binary tensors both ways.
    header = {"inputs": [{"name": input_meta["name"], "shape": dims, "datatype": "FP32",
                          "parameters": {"binary_data_size": len(raw)}}],
              "outputs": [{"name": output_name, "parameters": {"binary_data": True}}]}
    body, headers = binary_body(header, raw)
    code, response_headers, data = rest.request("POST", infer_path, body, headers)
    check(code == 200, "binary inference answers 200 (got %d: %s)" % (code, data[:200]))
    if code == 200:
        length = int(response_headers["inference-header-content-length"])
        document = json.loads(data[:length])
        rest.validate(document, "inference_response_binary", "binary response header")
        binary_logits = np.frombuffer(data[length:], dtype="<f4")
        check(np.array_equal(binary_logits, logits), "binary logits equal the JSON logits bit for bit")
        check(document["outputs"][0]["parameters"]["binary_data_size"] == len(data) - length,
              "binary_data_size is the size of the bytes after the header")
    # Binary in, JSON out.
    header_json_out = dict(header, outputs=[{"name": output_name}])
    body, headers = binary_body(header_json_out, raw)
    code, _, data = rest.request("POST", infer_path, body, headers)
    if check(code == 200, "binary in, JSON out answers 200"):
        document = json.loads(data)
        rest.validate(document, "inference_response", "binary in, JSON out")
        check(np.array_equal(np.array(document["outputs"][0]["data"], dtype=np.float32), logits),
              "binary in, JSON out: the same logits")
    # The classification extension.
    classified = dict(request, outputs=[{"name": output_name, "parameters": {"classification": 2}}])
    document = rest.json("POST", infer_path, json.dumps(classified), {"Content-Type": "application/json"},
                         definition="inference_response")
    top = int(np.argmax(logits[:classes]))
    check(document["outputs"][0]["data"][0].split(":")[1] == str(top), "classification names the top class")

    # gRPC, typed and raw.
    channel = grpc.insecure_channel("127.0.0.1:%d" % grpc_port)
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    check(stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live, "gRPC ServerLive")
    check(stub.ServerReady(pb.ServerReadyRequest(), timeout=30).ready, "gRPC ServerReady")
    check(stub.ModelReady(pb.ModelReadyRequest(name=model), timeout=30).ready, "gRPC ModelReady")
    grpc_metadata = stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=30)
    check(list(grpc_metadata.inputs[0].shape) == shape and grpc_metadata.platform == metadata["platform"],
          "gRPC model metadata equals REST's")
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=30).status
    check(status == health_pb2.HealthCheckResponse.SERVING, "grpc.health.v1 Check: SERVING")

    def grpc_request(raw_input, dims=dims, datatype="FP32", data=None, name=None):
        tensor = pb.ModelInferRequest.InferInputTensor(name=name or input_meta["name"], datatype=datatype, shape=dims)
        message = pb.ModelInferRequest(model_name=model, id="conformance", inputs=[tensor])
        if raw_input:
            message.raw_input_contents.append(raw if data is None else data)
        else:
            tensor = message.inputs[0]
            tensor.contents.fp32_contents.extend(batch.ravel().tolist() if data is None else data)
        return message

    typed = stub.ModelInfer(grpc_request(False), timeout=120)
    check(np.array_equal(np.array(typed.outputs[0].contents.fp32_contents, dtype=np.float32), logits),
          "gRPC typed logits equal the JSON logits")
    raw_answer = stub.ModelInfer(grpc_request(True), timeout=120)
    # No output named: every output the metadata lists (the logits, and the safety guard's
    # ood_score [N,1] in a package exported with it), each raw, in the metadata's order.
    output_names = [o["name"] for o in metadata["outputs"]]
    check([o.name for o in typed.outputs] == output_names, "gRPC answers every listed output: %s" % output_names)
    check(len(raw_answer.raw_output_contents) == len(output_names) and
          np.array_equal(np.frombuffer(raw_answer.raw_output_contents[0], dtype="<f4"), logits),
          "gRPC raw logits equal the JSON logits")
    unnamed = {k: v for k, v in request.items() if k != "outputs"}
    everything = rest.json("POST", infer_path, json.dumps(unnamed), {"Content-Type": "application/json"},
                           definition="inference_response")
    check([o["name"] for o in everything["outputs"]] == output_names, "REST answers every listed output unnamed")
    for i, meta in enumerate(metadata["outputs"][1:], start=1):
        rest_values = np.array(everything["outputs"][i]["data"], dtype=np.float32)
        check(everything["outputs"][i]["shape"] == [2, meta["shape"][1]],
              "%s shape [2, %d]" % (meta["name"], meta["shape"][1]))
        check(np.array_equal(np.array(typed.outputs[i].contents.fp32_contents, dtype=np.float32), rest_values) and
              np.array_equal(np.frombuffer(raw_answer.raw_output_contents[i], dtype="<f4"), rest_values),
              "gRPC %s equals REST's" % meta["name"])

    # Bad inputs on each path.
    one = batch[:1]
    one_data = one.ravel().tolist()
    json_cases = [
        ("wrong size", {"inputs": [{"name": input_meta["name"], "shape": dims, "datatype": "FP32", "data": one_data}]},
         "needs"),
        ("wrong datatype", {"inputs": [{"name": input_meta["name"], "shape": list(one.shape), "datatype": "INT8",
                                        "data": one_data}]}, "datatype INT8"),
        ("missing tensor", {"inputs": []}, "inputs"),
        ("missing data", {"inputs": [{"name": input_meta["name"], "shape": list(one.shape), "datatype": "FP32"}]},
         "data"),
        ("wrong name", {"inputs": [{"name": "pixels", "shape": list(one.shape), "datatype": "FP32", "data": one_data}]},
         "unknown input"),
    ]
    for batch_size in HUGE_BATCHES:
        json_cases.append(("huge shape %d" % batch_size,
                           {"inputs": [{"name": input_meta["name"], "shape": [batch_size] + dims[1:],
                                        "datatype": "FP32", "data": one_data}]}, "shape [%d," % batch_size))
    for what, document, says in json_cases:
        rest.error("POST", infer_path, json.dumps(document), 400, says, {"Content-Type": "application/json"})
    one_raw = one.astype("<f4").tobytes()
    binary_header = {"inputs": [{"name": input_meta["name"], "shape": list(one.shape), "datatype": "FP32",
                                 "parameters": {"binary_data_size": len(one_raw)}}]}
    text = json.dumps(binary_header).encode()
    rest.error("POST", infer_path, text + one_raw[:-10], 400, "binary_data_size",
               {"Inference-Header-Content-Length": str(len(text))})
    rest.error("POST", infer_path, text + one_raw, 400, "Inference-Header-Content-Length",
               {"Inference-Header-Content-Length": str(len(text) + len(one_raw) + 1)})
    for batch_size in HUGE_BATCHES:
        huge = {"inputs": [dict(binary_header["inputs"][0], shape=[batch_size] + dims[1:])]}
        body, headers = binary_body(huge, one_raw)
        rest.error("POST", infer_path, body, 400, "shape [%d," % batch_size, headers)
    non_finite = np.array(one, copy=True)
    non_finite.flat[10] = np.inf
    body, headers = binary_body(binary_header, non_finite.astype("<f4").tobytes())
    rest.error("POST", infer_path, body, 400, "non-finite", headers)
    document = {"inputs": [{"name": input_meta["name"], "shape": list(one.shape), "datatype": "FP32",
                            "data": [1e39] + one_data[1:]}]}
    rest.error("POST", infer_path, json.dumps(document), 400, "not a finite FP32", {"Content-Type": "application/json"})
    rest.error("POST", "/v2/models/unknown/infer", json.dumps(request), 404, "unknown",
               {"Content-Type": "application/json"})

    def grpc_error(message, code, says):
        try:
            stub.ModelInfer(message, timeout=60)
            check(False, "gRPC %s: refused" % says)
        except grpc.RpcError as error:
            check(error.code() == code, "gRPC %s: %s (got %s)" % (says, code, error.code()))
            check(says.lower() in error.details().lower(), "gRPC error names %r: %s" % (says, error.details()))

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    grpc_error(grpc_request(True, data=one_raw), invalid, "bytes of data")
    grpc_error(grpc_request(False, data=one_data), invalid, "values")
    grpc_error(grpc_request(True, datatype="FP16"), invalid, "datatype FP16")
    grpc_error(pb.ModelInferRequest(model_name=model), invalid, "one input")
    grpc_error(grpc_request(True, name="pixels"), invalid, "unknown input")
    for batch_size in HUGE_BATCHES:
        grpc_error(grpc_request(True, dims=[batch_size] + dims[1:], data=one_raw), invalid,
                   "shape [%d," % batch_size)
    grpc_error(pb.ModelInferRequest(model_name="unknown", inputs=[pb.ModelInferRequest.InferInputTensor(name="x")]),
               grpc.StatusCode.NOT_FOUND, "unknown")

    # And the server is none the worse.
    after = rest.json("POST", infer_path, json.dumps(request), {"Content-Type": "application/json"},
                      definition="inference_response")
    check(np.array_equal(np.array(after["outputs"][0]["data"], dtype=np.float32), logits), "same answer afterwards")
    channel.close()


if __name__ == "__main__":
    main()
