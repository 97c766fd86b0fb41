-- wrk script for bench/soak.py: recipients' taps on seeded short codes, with a share of
-- gateways' shorten calls mixed in.
--
-- wrk -s bench/soak.lua URL -- CODES_FILE API_KEY RESULT_FILE SHORTEN_SHARE
--
-- CODES_FILE has one seeded code a line, "t /CODE LOCATION" (tracked) or "u /CODE LOCATION"
-- (untracked), LOCATION being where its 302 must lead. At the end the counters of every
-- thread and wrk's own figures go to RESULT_FILE as "name value" lines, and a few wrong
-- answers as "wrong ANSWER" lines, which soak.py reads rather than parsing wrk's human output.
--
-- wrk does not say which request an answer belongs to, so each thread keeps the Locations of
-- its taps in flight: a 302 is right when it names one of them, which it then takes off.

-- Tracked seeds redirect to this host and untracked ones elsewhere, so a 302's Location
-- tells which kind of tap was answered without relating responses to requests.
local TRACKED_HOST = "://tracked.example.com/"

local PHONES = {
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    .. "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 "
    .. "(KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (Linux; Android 13; SM-A536B) AppleWebKit/537.36 "
    .. "(KHTML, like Gecko) SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
}

-- Small SMS bodies with one or two links; the Cyrillic one is UCS-2, which takes another
-- path through segment counting.
local SHORTEN_BODIES = {
  '{"body": "Flash sale today only: https://shop.example.com/sale?src=sms Reply STOP to opt out"}',
  '{"body": "Order 8812 shipped: https://track.example.com/o/8812 Change delivery: '
    .. 'example.com/d/8812"}',
  '{"body": "Your code is ready: https://news.example.org/a/42", '
    .. '"recipient": {"contact_id": "c-soak", "tracking_consent": true}}',
  '{"body": "\\u0412\\u0430\\u0448 \\u0437\\u0430\\u043a\\u0430\\u0437: '
    .. 'https://shop.example.com/o/77 https://help.example.com/faq", '
    .. '"recipient": {"contact_id": "c-soak-2", "tracking_consent": true}, '
    .. '"non_trackable": ["https://help.example.com/faq"]}',
}

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_number", #threads)
end

-- Per-thread counters are globals because thread:get reads a thread's globals.
result_file = nil
tracked_sent = 0
untracked_sent = 0
shortens_sent = 0
tracked_ok = 0
untracked_ok = 0
shorten_ok = 0
wrong_location = 0
wrong_examples = {}
unexpected = {}

local MAX_EXAMPLES = 5

local taps = {}
local tracked = {}
local locations = {}
-- Location -> how many taps in flight expect it.
local awaited = {}
local shortens = {}
local shorten_share = 0.1
-- wrk calls request() once in the first thread to check that it builds valid HTTP, and
-- never sends that one; it must not count as a tap in flight.
local checking = false

function init(args)
  local codes_file, api_key = args[1], args[2]
  result_file = args[3]
  shorten_share = tonumber(args[4]) or shorten_share
  math.randomseed(os.time() * 1000 + thread_number)
  checking = thread_number == 1

  local file = assert(io.open(codes_file, "r"))
  for line in file:lines() do
    local kind, path, location = string.match(line, "^(%a) (%S+) (%S+)$")
    if kind then
      local headers = { ["User-Agent"] = PHONES[#taps % #PHONES + 1] }
      taps[#taps + 1] = wrk.format("GET", path, headers)
      tracked[#taps] = kind == "t"
      locations[#taps] = location
    end
  end
  file:close()
  assert(#taps > 0, "no codes in " .. codes_file)

  local headers = {
    ["Authorization"] = "Bearer " .. api_key,
    ["Content-Type"] = "application/json",
  }
  for i, body in ipairs(SHORTEN_BODIES) do
    shortens[i] = wrk.format("POST", "/v1/messages/shorten", headers, body)
  end
end

function request()
  if checking then
    checking = false
    return taps[1]
  end
  if math.random() < shorten_share then
    shortens_sent = shortens_sent + 1
    return shortens[math.random(#shortens)]
  end
  local index = math.random(#taps)
  local location = locations[index]
  awaited[location] = (awaited[location] or 0) + 1
  if tracked[index] then
    tracked_sent = tracked_sent + 1
  else
    untracked_sent = untracked_sent + 1
  end
  return taps[index]
end

function response(status, headers, body)
  if status == 302 then
    local location = headers["location"] or headers["Location"] or ""
    local waiting = awaited[location]
    if waiting then
      awaited[location] = waiting > 1 and waiting - 1 or nil
    else
      wrong_location = wrong_location + 1
      if #wrong_examples < MAX_EXAMPLES then
        wrong_examples[#wrong_examples + 1] = "302 to " .. location
      end
    end
    if string.find(location, TRACKED_HOST, 1, true) then
      tracked_ok = tracked_ok + 1
    else
      untracked_ok = untracked_ok + 1
    end
  elseif status == 200 then
    shorten_ok = shorten_ok + 1
  else
    unexpected[status] = (unexpected[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local totals = {
    tracked_sent = 0, untracked_sent = 0, shortens_sent = 0,
    tracked_ok = 0, untracked_ok = 0, shorten_ok = 0, wrong_location = 0,
  }
  local statuses = {}
  local examples = {}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
    for status, count in pairs(thread:get("unexpected") or {}) do
      statuses[status] = (statuses[status] or 0) + count
    end
    for _, text in ipairs(thread:get("wrong_examples") or {}) do
      examples[#examples + 1] = text
    end
  end

  -- done() runs in wrk's main Lua state, which never saw init's arguments.
  local out = assert(io.open(threads[1]:get("result_file"), "w"))
  local function put(name, value)
    out:write(string.format("%s %.0f\n", name, value))
  end
  put("duration_us", summary.duration)
  put("requests", summary.requests)
  put("bytes", summary.bytes)
  for _, kind in ipairs({ "connect", "read", "write", "timeout", "status" }) do
    put("errors_" .. kind, summary.errors[kind])
  end
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    put("latency_p" .. p .. "_us", latency:percentile(p))
  end
  put("latency_max_us", latency.max)
  for name, value in pairs(totals) do
    put(name, value)
  end
  for status, count in pairs(statuses) do
    put("status_" .. status, count)
  end
  for _, text in ipairs(examples) do
    out:write("wrong " .. string.gsub(text, "[\r\n]", " ") .. "\n")
  end
  out:close()
end
