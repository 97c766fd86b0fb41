-- A gateway's single shorten calls for bench.py: the same SMS body every time, and no
-- message_id, so that every call issues new codes rather than replaying a stored result.
--
-- wrk -s bench/bench_shorten.lua URL -- API_KEY BODY_FILE
--
-- BODY_FILE holds the request's JSON. Every answer must be a 200; one in SAMPLE_EVERY is
-- kept (the last SAMPLES of them a thread) for bench.py to check its links.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_report.lua")

local SAMPLE_EVERY = 101
local SAMPLES = 4

local shorten = nil

function init(args)
  local file = assert(io.open(args[2], "r"))
  local body = file:read("*a")
  file:close()
  shorten = wrk.format("POST", "/v1/messages/shorten", {
    ["Authorization"] = "Bearer " .. args[1],
    ["Content-Type"] = "application/json",
  }, body)
end

function request()
  count_sent()
  return shorten
end

function response(status, headers, body)
  count_answer(status)
  if status ~= 200 then
    note_wrong(status .. " " .. string.sub(body or "", 1, 300))
  elseif answered % SAMPLE_EVERY == 1 then
    samples[math.floor(answered / SAMPLE_EVERY) % SAMPLES + 1] = body
  end
end
