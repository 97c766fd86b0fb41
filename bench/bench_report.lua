-- Loaded by the other bench_*.lua scripts: at the end of a run, wrk's own figures and the
-- script's checks go to stdout as "bench NAME VALUE" lines, which bench.py reads instead of
-- parsing wrk's human summary (whose units change with the magnitude); a few of the wrong
-- answers follow as "wrong ANSWER" lines, and the answers a script kept for bench.py to look
-- at as "sample ANSWER" lines.
--
-- A script counts, in globals of each thread (thread:get reads a thread's globals):
--   sent        requests sent (counted with count_sent)
--   answered    answers read, whatever their status
--   redirected  answers with status 302
--   wrong       answers that were not what the request asked for (counted with note_wrong)

local MAX_EXAMPLES = 5
local COUNTERS = { "sent", "answered", "redirected", "wrong" }

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_number", #threads)
end

sent = 0
answered = 0
redirected = 0
wrong = 0
wrong_examples = {}
samples = {}

-- wrk calls request() once in the first thread to check what it builds, and never sends that
-- request; it must count neither as sent nor as awaited.
local checked = false

-- Whether the request being built will be sent; if so, it is counted.
function count_sent()
  if not checked and thread_number == 1 then
    checked = true
    return false
  end
  sent = sent + 1
  return true
end

function count_answer(status)
  answered = answered + 1
  if status == 302 then
    redirected = redirected + 1
  end
end

function note_wrong(text)
  wrong = wrong + 1
  if #wrong_examples < MAX_EXAMPLES then
    wrong_examples[#wrong_examples + 1] = text
  end
end

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
  for _, name in ipairs(COUNTERS) do
    local sum = 0
    for _, thread in ipairs(threads) do
      sum = sum + (thread:get(name) or 0)
    end
    put(name, sum)
  end
  for _, thread in ipairs(threads) do
    for _, text in ipairs(thread:get("wrong_examples") or {}) do
      io.write("wrong " .. string.gsub(text, "[\r\n]", " ") .. "\n")
    end
    for _, text in ipairs(thread:get("samples") or {}) do
      io.write("sample " .. string.gsub(text, "[\r\n]", " ") .. "\n")
    end
  end
end
