-- wrk script for the service load test: POSTs one photograph to /v1/classify on every
-- connection and tallies the answers per status, checking that each 503 is the service's
-- deliberate refusal (Retry-After header and the resource_exhausted code), not some other failure.
-- usage: wrk ... -s classify.lua URL -- IMAGE_PATH CONTENT_TYPE

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "rb"), "cannot read " .. tostring(args[1]))
  body = file:read("*a")
  file:close()
  headers = {["Content-Type"] = args[2] or "image/jpeg"}
  statuses = {}
  malformed_503 = 0
end

function request()
  return wrk.format("POST", "/v1/classify", headers, body)
end

function response(status, response_headers, response_body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 503 and (response_headers["Retry-After"] == nil or not response_body:find("resource_exhausted", 1, true)) then
    malformed_503 = malformed_503 + 1
  end
end

function done(summary, latency, requests)
  local total, bad = {}, 0
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
    bad = bad + thread:get("malformed_503")
  end
  local line = "statuses:"
  for status, count in pairs(total) do
    line = line .. " " .. status .. "=" .. count
  end
  io.write(line .. "\n")
  io.write(string.format("malformed_503=%d\n", bad))
  io.write(string.format("socket_errors=%d\n", summary.errors.connect + summary.errors.read + summary.errors.write +
                                                  summary.errors.timeout))
  io.write(string.format("requests=%d duration_s=%.2f throughput=%.1f\n", summary.requests, summary.duration / 1e6,
                         summary.requests / (summary.duration / 1e6)))
  io.write(string.format("latency_ms p50=%.2f p90=%.2f p99=%.2f max=%.2f\n", latency:percentile(50) / 1e3,
                         latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3))
end
