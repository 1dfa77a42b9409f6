-- wrk script for bench/listen.sh: POSTs a 2 KiB JSON event with a fresh event id, signed with
-- the mailparse scheme (X-Signature = hex HMAC-SHA256 of "{timestamp}.{body}"), computed per
-- request with OpenSSL's HMAC() through LuaJIT's FFI, so every request is a new event.
local ffi = require("ffi")
ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]]
local crypto = ffi.load("crypto")
local secret = os.getenv("BENCH_SECRET") or "bench-secret-value"
local md = ffi.new("unsigned char[32]")
local mdlen = ffi.new("unsigned int[1]")
-- BENCH_BODY_BYTES: the body size (default 2048; bench/atrest.sh also uses other sizes).
local pad = string.rep("x", (tonumber(os.getenv("BENCH_BODY_BYTES")) or 2048) - 120)
-- BENCH_BODY_FILE: a JSON object (a parsed email event without its event_id) to send instead
-- of the padded body, with a fresh event_id put first (bench/atrest.sh's "mail" bodies).
local rest = nil
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  rest = f:read("*a"):gsub("^%s*{", "", 1)
  f:close()
end
local counter = 0
local prefix = ""

function setup(thread)
  thread:set("prefix", tostring(math.random(1, 1e9)) .. "_" .. tostring(os.time()))
end

function init(args)
  prefix = wrk.thread:get("prefix") or tostring(math.random(1, 1e9))
end

local function hex(buf, n)
  local out = {}
  for i = 0, n - 1 do
    out[#out + 1] = string.format("%02x", buf[i])
  end
  return table.concat(out)
end

function request()
  counter = counter + 1
  local ts = tostring(os.time())
  local body
  if rest then
    body = '{"event_id":"bench_' .. prefix .. "_" .. counter .. '",' .. rest
  else
    body = '{"event_id":"bench_' .. prefix .. "_" .. counter ..
           '","org_id":"org_bench","subject":"benchmark","pad":"' .. pad .. '"}'
  end
  local signed = ts .. "." .. body
  crypto.HMAC(crypto.EVP_sha256(), secret, #secret, signed, #signed, md, mdlen)
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["X-Signature"] = hex(md, mdlen[0]),
    ["X-Signature-Timestamp"] = ts,
  }, body)
end
