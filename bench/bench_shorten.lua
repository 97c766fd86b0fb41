-- A gateway's single shorten calls for bench.py: the same two-link SMS body every time, and
-- no message_id, so that every call issues new codes rather than replaying a stored result.
--
-- wrk -s bench/bench_shorten.lua URL -- API_KEY

dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "bench_report.lua")

local BODY = '{"body": "Order 4711 shipped: https://shop.example.com/orders/00004711?utm_source=sms&cp=1'
  .. ' Returns: https://shop.example.com/returns/0004711?utm_source=sms&cp=1"}'

local shorten = nil

function init(args)
  shorten = wrk.format("POST", "/v1/messages/shorten", {
    ["Authorization"] = "Bearer " .. args[1],
    ["Content-Type"] = "application/json",
  }, BODY)
end

function request()
  return shorten
end
