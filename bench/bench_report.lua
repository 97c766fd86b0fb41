-- Loaded by the other bench_*.lua scripts: at the end of a run, wrk's own figures go to
-- stdout as "bench NAME VALUE" lines, which bench.py reads instead of parsing wrk's human
-- summary (whose units change with the magnitude).

function done(summary, latency, requests)
  local function put(name, value)
    io.write(string.format("bench %s %.0f\n", name, value))
  end
  put("duration_us", summary.duration)
  put("requests", summary.requests)
  for _, kind in ipairs({ "connect", "read", "write", "timeout", "status" }) do
    put("errors_" .. kind, summary.errors[kind])
  end
  put("latency_p50_us", latency:percentile(50))
  put("latency_p99_us", latency:percentile(99))
  put("latency_max_us", latency.max)
end
