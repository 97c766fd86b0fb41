-- Recipients' taps for bench.py: GET on a random path of PATHS_FILE, one "/CODE" a line,
-- from a phone browser (a crawler's User-Agent would be counted as a bot, not a click).
--
-- wrk -s bench/bench_taps.lua URL -- PATHS_FILE

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_report.lua")

local PHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
  .. "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"

local threads = 0
local taps = {}

function setup(thread)
  threads = threads + 1
  thread:set("thread_number", threads)
end

function init(args)
  -- Without a seed of its own, every thread would walk the same sequence of codes.
  math.randomseed(os.time() * 100 + (thread_number or 0))
  local file = assert(io.open(args[1], "r"))
  for path in file:lines() do
    if path ~= "" then
      taps[#taps + 1] = wrk.format("GET", path, { ["User-Agent"] = PHONE })
    end
  end
  file:close()
  assert(#taps > 0, "no paths in " .. args[1])
end

function request()
  return taps[math.random(#taps)]
end
