-- A smoke test of the Lua interpreter: the language, the standard library, error handling.
-- Its output is compared with lua_smoke.expected.

local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
print("fib(25)", fib(25))

-- integers, floats, integer division, bit operations, math
print(7 // 2, 7 / 2, 7 % 3, -7 // 2, 2^10, 1 << 40, 0xff ~ 0x0f, math.maxinteger)
print(math.floor(3.7), math.ceil(3.2), math.abs(-4), math.max(3, 9, 1), math.type(1), math.type(1.0))
print(string.format("%5.2f|%-5d|%x|%q", math.pi, 42, 255, "a\nb"))

-- strings and patterns
local s = "The quick brown fox jumps over the lazy dog"
print(#s, s:upper():sub(1, 9), s:find("fox"), s:match("(%a+) dog"))
local words = {}
for w in s:gmatch("%a+") do words[#words + 1] = w:lower() end
table.sort(words)
print(table.concat(words, ","))
print((s:gsub("o", "0")))
print(("x"):rep(5, "-"), string.byte("A"), string.char(72, 105), utf8.char(955, 8364))

-- tables, metatables, closures
local Vec = {}
Vec.__index = Vec
Vec.__add = function(a, b) return setmetatable({x = a.x + b.x, y = a.y + b.y}, Vec) end
Vec.__tostring = function(v) return "(" .. v.x .. "," .. v.y .. ")" end
local v = setmetatable({x = 1, y = 2}, Vec) + setmetatable({x = 10, y = 20}, Vec)
print(tostring(v))
local function counter() local n = 0 return function() n = n + 1 return n end end
local c = counter(); c(); c()
print("counter", c())
local t = {}
for i = 1, 1000 do t[i] = i * i end
local sum = 0
for _, x in ipairs(t) do sum = sum + x end
print("sum of squares", sum, #t, select("#", 1, 2, 3), table.unpack({4, 5, 6}))

-- coroutines
local gen = coroutine.wrap(function() for i = 1, 3 do coroutine.yield(i * 10) end end)
print("coroutine", gen(), gen(), gen())

-- errors
local ok, err = pcall(function() error({code = 42}) end)
print("pcall", ok, err.code)
ok, err = pcall(function() local x = nil; return x.field end)
print("pcall", ok, (err:gsub("^.-:%d+: ", "")))
print("xpcall", xpcall(function() error("boom", 0) end, function(m) return "handled " .. m end))

-- goto, integer for with step, while/repeat
local acc = {}
for i = 10, 1, -3 do acc[#acc + 1] = i end
local i = 0
repeat i = i + 1 until i >= 5
::top:: if i < 8 then i = i + 1 goto top end
print(table.concat(acc, " "), i)

-- io and os
local name = os.tmpname()
local f = assert(io.open(name, "w"))
f:write("line one\n", "line two\n", 3.5, "\n")
f:close()
for line in io.lines(name) do io.write("[", line, "]") end
io.write("\n")
os.remove(name)
print(type(os.time()), os.getenv("ALLVM_SMOKE_UNSET"), os.date("!%Y-%m-%d", 0))

-- load and string.dump
local chunk = load("return 6 * 7")
print("load", chunk(), load(string.dump(function() return "dumped" end))())
collectgarbage()
print("done")
