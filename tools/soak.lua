-- wrk script for tools/soak.sh: 90% reads over every read route, 10%
-- writes over the write routes, against the demo company.
-- Reads cover the demo's entities; a tenth of the writes are check-ins on
-- the demo's key results, which reads then see; the rest (check-ins,
-- comments, new objectives and key results, retitles) go to a sandbox
-- cycle "soak" that reads leave alone, so answers keep a realistic size
-- and the run measures okrd rather than ever larger answers.
-- Environment (set by soak.sh): OKR_ADMIN, OKR_AUDITOR tokens; OKR_IDS, a
-- file of "kind id" lines (cycle-current, cycle-previous, unit,
-- objective, key-result, check-in, sandbox-objective, sandbox-key-result);
-- OKR_HEAD, the head seq at the start; OKR_SLICE, a number that keeps
-- created ids unique across runs; OKR_WRITE_PERCENT, the share of writes
-- (default 10).
local admin = os.getenv("OKR_ADMIN")
local auditor = os.getenv("OKR_AUDITOR")
local head = tonumber(os.getenv("OKR_HEAD")) or 1
local slice = os.getenv("OKR_SLICE") or "0"

local ids = { ["cycle-current"] = {}, ["cycle-previous"] = {}, unit = {}, objective = {},
              ["key-result"] = {}, ["check-in"] = {}, ["sandbox-objective"] = {}, ["sandbox-key-result"] = {} }
for line in io.lines(os.getenv("OKR_IDS")) do
  local kind, id = line:match("^(%S+) (%S+)$")
  if kind and ids[kind] then table.insert(ids[kind], id) end
end
local function pick(list) return list[math.random(#list)] end
local current = ids["cycle-current"][1]
local previous = ids["cycle-previous"][1]

local counter = 0
thread_id = 0  -- global: setup() numbers each thread's copy
local threads = {}

function setup(thread)
  thread_id = thread_id + 1
  thread:set("thread_id", thread_id)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (thread_id or 0) * 7919 + tonumber(slice))
  server_errors = 0
  client_errors = 0
  writes = 0
end

local json_headers = { ["Content-Type"] = "application/json" }
local function with_token(token)
  return { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
end

local function read()
  local r = math.random(1000)
  local as_of = ""
  if math.random(4) == 1 then as_of = "as_of=" .. math.random(head) end
  local function q(path, extra)
    local parts = {}
    if extra then table.insert(parts, extra) end
    if as_of ~= "" then table.insert(parts, as_of) end
    if #parts == 0 then return path end
    return path .. "?" .. table.concat(parts, "&")
  end
  if r <= 75 then return wrk.format("GET", "/healthz")
  elseif r <= 80 then return wrk.format("GET", "/metrics")
  elseif r <= 130 then return wrk.format("GET", q("/v1/units"))
  elseif r <= 170 then return wrk.format("GET", q("/v1/units/" .. pick(ids.unit)))
  elseif r <= 200 then return wrk.format("GET", q("/v1/cycles"))
  elseif r <= 220 then return wrk.format("GET", q("/v1/cycles/" .. current))
  elseif r <= 260 then
    local formats = { "json", "md", "csv" }
    return wrk.format("GET", q("/v1/cycles/" .. previous .. "/review", "format=" .. pick(formats)))
  elseif r <= 340 then return wrk.format("GET", q("/v1/objectives", "cycle=" .. current))
  elseif r <= 460 then return wrk.format("GET", q("/v1/objectives/" .. pick(ids.objective)))
  elseif r <= 580 then
    local extra = nil
    if math.random(3) == 1 then extra = "at=2020-01-01T00:00:00Z" end
    return wrk.format("GET", q("/v1/key-results/" .. pick(ids["key-result"]), extra))
  elseif r <= 660 then return wrk.format("GET", q("/v1/key-results/" .. pick(ids["key-result"]) .. "/check-ins"))
  elseif r <= 760 then return wrk.format("GET", q("/v1/cascade", "cycle=" .. current))
  elseif r <= 800 then
    local from = math.random(head)
    return wrk.format("GET", "/v1/diff?from=" .. from .. "&to=" .. math.min(head, from + math.random(200)))
  elseif r <= 860 then return wrk.format("GET", q("/v1/lint", "cycle=" .. current))
  elseif r <= 920 then
    return wrk.format("GET", "/v1/events?limit=100&after=" .. math.random(head), with_token(auditor))
  elseif r <= 990 then
    return wrk.format("GET", "/v1/history/" .. pick(ids["key-result"]), with_token(auditor))
  elseif r < 1000 then return wrk.format("GET", "/v1/openapi.json")
  elseif math.random(20) == 1 then
    -- A full chain check costs as much as the log is long: 1 read in 20 000.
    return wrk.format("GET", "/v1/audit/verify", with_token(auditor))
  else return wrk.format("GET", "/v1/openapi.json")
  end
end

local function write()
  counter = counter + 1
  local tag = "soak-" .. slice .. "-" .. (thread_id or 0) .. "-" .. counter
  local r = math.random(100)
  local h = with_token(admin)
  if r <= 10 then
    return wrk.format("POST", "/v1/key-results/" .. pick(ids["key-result"]) .. "/check-ins", h,
      '{"value":' .. math.random(0, 100) .. ',"confidence":0.' .. math.random(1, 9) .. ',"note":"' .. tag .. '"}')
  elseif r <= 55 then
    return wrk.format("POST", "/v1/key-results/" .. pick(ids["sandbox-key-result"]) .. "/check-ins", h,
      '{"value":' .. math.random(0, 100) .. ',"note":"' .. tag .. '"}')
  elseif r <= 67 then
    return wrk.format("POST", "/v1/objectives/" .. pick(ids["sandbox-objective"]) .. "/comments", h,
      '{"text":"' .. tag .. '"}')
  elseif r <= 75 then
    return wrk.format("POST", "/v1/key-results/" .. pick(ids["sandbox-key-result"]) .. "/comments", h,
      '{"text":"' .. tag .. '"}')
  elseif r <= 80 then
    return wrk.format("PATCH", "/v1/objectives/" .. pick(ids["sandbox-objective"]), h, '{"title":"Retitled ' .. tag .. '"}')
  elseif r <= 85 then
    return wrk.format("PATCH", "/v1/key-results/" .. pick(ids["sandbox-key-result"]), h,
      '{"title":"Retitled ' .. tag .. '","target":' .. math.random(101, 200) .. '}')
  elseif r <= 90 then
    return wrk.format("POST", "/v1/objectives", h,
      '{"id":"o-' .. tag .. '","cycle":"soak","owner":"' .. pick(ids.unit) ..
      '","title":"Soak ' .. tag .. '","parents":["' .. pick(ids["sandbox-objective"]) .. '"]}')
  elseif r <= 95 then
    return wrk.format("POST", "/v1/key-results", h,
      '{"id":"kr-' .. tag .. '","objective":"' .. pick(ids["sandbox-objective"]) .. '","title":"Soak ' .. tag ..
      '","start":0,"target":' .. math.random(10, 100) .. '}')
  else
    local corrects = pick(ids["check-in"])
    local kr, ci = corrects:match("^(.-)/(.*)$")
    return wrk.format("POST", "/v1/key-results/" .. kr .. "/corrections", h,
      '{"corrects":"' .. ci .. '","value":' .. math.random(0, 100) .. ',"note":"' .. tag .. '"}')
  end
end

local write_percent = tonumber(os.getenv("OKR_WRITE_PERCENT") or "10")

function request()
  if math.random(100) <= write_percent then
    writes = writes + 1
    return write()
  end
  return read()
end

function response(status, headers, body)
  if status >= 500 then server_errors = server_errors + 1
  elseif status >= 400 then client_errors = client_errors + 1 end
end

function done(summary, latency, requests)
  local s5, s4, w = 0, 0, 0
  for _, t in ipairs(threads) do
    s5 = s5 + (t:get("server_errors") or 0)
    s4 = s4 + (t:get("client_errors") or 0)
    w = w + (t:get("writes") or 0)
  end
  local socket_errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format("SOAK requests=%d writes=%d errors_5xx=%d errors_4xx=%d socket_errors=%d p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, w, s5, s4, socket_errors, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
