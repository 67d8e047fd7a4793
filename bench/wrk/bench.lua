-- One wrk script for every benchmark scenario.
--   wrk ... <url> -- <mode> <path> <token> <count> <tag>
-- mode get-random:  GET <path><random 1..count>   (ids loaded as <prefix><n>)
-- mode static:      GET <path>
-- mode post-create: POST <path> with a new JSON record each time (sku <tag>-<n>);
--                   <path> may list several, comma-separated: requests go round robin
-- token "" (or "-") sends no Authorization header.
-- done() prints one line "BENCHJSON {...}" that bench/_common.py parses.

local mode, path, count, tag
local paths = {}
local n = 0

function init(args)
  mode = args[1]
  path = args[2]
  local token = args[3]
  count = tonumber(args[4]) or 0
  tag = args[5] or "t"
  for p in string.gmatch(path, "[^,]+") do
    paths[#paths + 1] = p
  end
  if token ~= nil and token ~= "" and token ~= "-" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
  if mode == "post-create" then
    wrk.headers["Content-Type"] = "application/json"
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  if mode == "get-random" then
    return wrk.format("GET", path .. math.random(1, count))
  elseif mode == "post-create" then
    n = n + 1
    local body = string.format(
      '{"sku":"%s-%d","name":"Created %d","price":%d.25,"region":"eu","stock":%d}',
      tag, n, n, n % 1000, n % 500)
    return wrk.format("POST", paths[(n % #paths) + 1], nil, body)
  end
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"mean_us":%.1f,' ..
    '"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
