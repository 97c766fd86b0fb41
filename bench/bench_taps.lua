-- Recipients' taps for bench.py: GET on a random path of PATHS_FILE, from a phone browser (a
-- crawler's User-Agent would be counted as a bot, not a click), and a check of every answer.
--
-- wrk -s bench/bench_taps.lua URL -- PATHS_FILE [HOST]
--
-- PATHS_FILE has one "/CODE LOCATION" a line: a path to tap and the Location its 302 must
-- name. wrk does not say which request an answer belongs to, so each thread keeps the
-- Locations of its requests in flight: an answer is right when it is a 302 naming one of
-- them, which it then takes off. A wrong Location goes unnoticed only when another request
-- of the same thread in flight at that moment expects it; bench.py also asks a sample of the
-- paths again one at a time, where each answer is paired with its request. With HOST, every
-- request names that host (an org's branded domain) in its Host header instead of URL's.

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_report.lua")

local PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
  .. "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"

local taps = {}
local locations = {}
-- Location -> how many requests in flight expect it.
local awaited = {}

function init(args)
  -- Without a seed of its own, every thread would walk the same sequence of codes.
  math.randomseed(os.time() * 100 + (thread_number or 0))
  local headers = { ["User-Agent"] = PHONE }
  if args[2] then
    headers["Host"] = args[2]
  end
  local file = assert(io.open(args[1], "r"))
  for line in file:lines() do
    local path, location = string.match(line, "^(%S+) (%S+)$")
    if path then
      taps[#taps + 1] = wrk.format("GET", path, headers)
      locations[#taps] = location
    end
  end
  file:close()
  assert(#taps > 0, "no paths in " .. args[1])
end

function request()
  local index = math.random(#taps)
  if count_sent() then
    local location = locations[index]
    awaited[location] = (awaited[location] or 0) + 1
  end
  return taps[index]
end

function response(status, headers, body)
  count_answer(status)
  local location = headers["location"] or headers["Location"]
  local waiting = status == 302 and location and awaited[location]
  if waiting then
    awaited[location] = waiting > 1 and waiting - 1 or nil
  elseif status == 302 then
    note_wrong("302 to " .. tostring(location) .. ", which no tap in flight asked for")
  else
    note_wrong(status .. ", not a 302")
  end
end
