//! The Lua script that holds a bucket in Redis.

use std::sync::LazyLock;

/// The token bucket. KEYS[1]: the bucket. ARGV: tokens per second, burst, tokens
/// wanted. Returns `{granted, tokens left (whole), µs until one token is back (0 when
/// one is left)}`. Tokens are kept in millionths so that all arithmetic is exact in
/// Lua's doubles (a burst of 2^32 is 4.3e15 millionths, below 2^53).
const SCRIPT_SOURCE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local cap = tonumber(ARGV[2]) * 1000000
local want = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 't', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = cap
  ts = now
end
if now > ts then
  local missing = cap - tokens
  local elapsed = math.min(now - ts, math.ceil(missing / rate) + 1)
  tokens = math.min(cap, tokens + elapsed * rate)
  ts = now
end
local granted = math.min(want, math.floor(tokens / 1000000))
tokens = tokens - granted * 1000000
redis.call('HSET', KEYS[1], 't', string.format('%.0f', tokens), 'ts', string.format('%.0f', ts))
local to_full_ms = math.ceil((cap - tokens) / rate / 1000)
redis.call('PEXPIRE', KEYS[1], to_full_ms + 1000)
local wait = 0
if tokens < 1000000 then
  wait = math.ceil((1000000 - tokens) / rate)
end
return {granted, math.floor(tokens / 1000000), wait}
";

pub(super) static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(SCRIPT_SOURCE));
