-- spec/sweep/sweep.lua — the bad-input sweep.
--
--   dlua spec/sweep/sweep.lua [--sample N] [--seed S] [--only PATTERN] [--verbose] [--self-test]
--
-- --self-test sweeps two planted functions instead, one that takes anything
-- and one whose error names nothing, and succeeds only if both are caught.
--
-- Walks everything reachable from `dl` (functions, sub-tables, classes and
-- their methods, Tensor methods, metamethods, property setters), finds a
-- working call for each (spec/sweep/seeds.lua, else a search over a small pool
-- of arguments), then replaces each argument in turn with bad values (nil,
-- strings, booleans, functions, wrong tables, -1, 0, 2^62, NaN, inf,
-- non-integers, tensors of another dtype/shape, closed, empty, non-contiguous
-- or requiring grad). Every call must return or raise a Lua error; an error
-- must name the function (one of the names it is reachable by); where an error
-- is the only right answer (see MUST below) returning is a silent acceptance.
-- Accepted exceptions live in spec/sweep/allow.lua, each with its reason.
-- Prints one line per failure and a closing summary; exits 1 on any failure.
--
-- Run it from an empty directory: calls given a string where a path goes
-- write there (`make sweep` and spec/run.sh do so).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local seeds = dofile(here .. "seeds.lua")
local allow = dofile(here .. "allow.lua")

local opts = {sample = nil, seed = 1, only = nil, verbose = false}
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--sample" then opts.sample = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--seed" then opts.seed = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--only" then opts.only = arg[i + 1]; i = i + 1
    elseif a == "--verbose" then opts.verbose = true
    elseif a == "--self-test" then opts.self_test = true
    else io.stderr:write("sweep: unknown argument ", a, "\n"); os.exit(2) end
    i = i + 1
  end
end

---------------------------------------------------------------------------
-- the surface: every public function and the names it is reachable by

local names_of = {} -- fn -> {name, ...}
local targets = {}  -- {name=, fn=, kind="function"|"method"|"class"|"cmethod"|"meta"|"setter", ...}
local by_fn = {}    -- fn -> its target (the first name wins; later names are aliases)

local function add_name(fn, name)
  local l = names_of[fn]
  if not l then l = {}; names_of[fn] = l end
  l[#l + 1] = name
end

local function add_target(t)
  add_name(t.fn, t.name)
  if by_fn[t.fn] and t.kind ~= "setter" then return end
  by_fn[t.fn] = t
  targets[#targets + 1] = t
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do if type(k) == "string" then keys[#keys + 1] = k end end
  table.sort(keys)
  return keys
end

-- a class (callable, the metatable of its instances), or a method table
-- whose instances another function makes (dl.utils.Progress)
local function is_class(v)
  return type(v) == "table" and rawget(v, "__index") == v
end

-- the methods of a class and of its parents: name -> {fn, the class defining it}
local CLASS_META = {__call = true, __tostring = true, __len = true, __close = true}
local function class_methods(cls)
  local out, c = {}, cls
  while type(c) == "table" do
    for _, k in ipairs(sorted_keys(c)) do
      local v = rawget(c, k)
      if type(v) == "function" and out[k] == nil and k ~= "init" and k ~= "extend"
        and (k:sub(1, 1) ~= "_" or CLASS_META[k]) then
        out[k] = {v, c}
      end
    end
    local mt = getmetatable(c)
    c = mt and mt.__index
  end
  return out
end

local seen_tables = {}
local function walk(t, prefix)
  if seen_tables[t] then return end
  seen_tables[t] = true
  for _, k in ipairs(sorted_keys(t)) do
    local v = t[k]
    local name = prefix .. "." .. k
    if k:sub(1, 1) == "_" or v == dl.Tensor then -- private; Tensor's methods are swept as methods
    elseif type(v) == "function" then
      add_target({name = name, fn = v, kind = "function"})
    elseif is_class(v) then
      if not seen_tables[v] then
        seen_tables[v] = true
        local callable = getmetatable(v) and getmetatable(v).__call
        add_target({name = name, fn = v, kind = callable and "class" or "methods", short = k})
      else
        add_name(v, name)
      end
    elseif type(v) == "table" and getmetatable(v) == nil then
      walk(v, name)
    end
  end
end

local TENSOR_MT = getmetatable(dl.zeros(1))
local METAOPS = {__add = "add", __sub = "sub", __mul = "mul", __div = "div", __mod = "remainder",
  __idiv = "floor_divide", __pow = "pow", __unm = "neg", __len = "len", __index = "index",
  __newindex = "index", __tostring = "tostring", __close = "close"}

local function build_surface()
  walk(dl, "dl")
  for _, k in ipairs(sorted_keys(dl.Tensor)) do
    local v = dl.Tensor[k]
    if type(v) == "function" and k:sub(1, 1) ~= "_" then
      add_target({name = "Tensor:" .. k, fn = v, kind = "method", short = k})
    end
  end
  for _, k in ipairs(sorted_keys(TENSOR_MT)) do
    local v = rawget(TENSOR_MT, k)
    if type(v) == "function" and METAOPS[k] then
      add_target({name = "Tensor." .. k, fn = v, kind = "meta", short = k})
    end
  end
  for _, p in ipairs({"grad", "requires_grad", "data"}) do
    add_target({name = "Tensor." .. p .. " =", fn = function(t, v) t[p] = v end, kind = "setter", short = p})
  end
  -- class methods: one target per function, swept on the class defining it
  local classes, class_target = {}, {}
  for _, t in ipairs(targets) do
    if t.kind == "class" or t.kind == "methods" then
      classes[#classes + 1] = t
      class_target[t.fn] = t
    end
  end
  for _, c in ipairs(classes) do
    local m = class_methods(c.fn)
    for _, k in ipairs(sorted_keys(m)) do
      local fn, def = m[k][1], class_target[m[k][2]] or c
      add_target({name = (rawget(def.fn, "__name") or def.short) .. ":" .. k, fn = fn, kind = "cmethod",
        class = def, short = k})
    end
  end
end

---------------------------------------------------------------------------
-- values

local function closed_tensor()
  local t = dl.randn(2, 3)
  getmetatable(t).__close(t)
  return t
end

-- the pool the search draws working arguments from, in the order it tries them
local POOL = {
  {id = "T", kind = "tensor", make = function() return dl.randn(2, 3) end},
  {id = "V", kind = "tensor", make = function() return dl.randn(3) end},
  {id = "L", kind = "tensor", make = function() return dl.tensor({1, 2}, {dtype = "int64"}) end},
  {id = "1", kind = "number", make = function() return 1 end},
  {id = "2", kind = "number", make = function() return 2 end},
  {id = "h", kind = "number", make = function() return 0.5 end},
  {id = "l", kind = "list", make = function() return {2, 3} end},
  {id = "tl", kind = "list", make = function() return {dl.randn(2, 3), dl.randn(2, 3)} end},
  {id = "Tt", kind = "tensor", make = function() return dl.randn(3, 2) end},
  {id = "B", kind = "tensor", make = function() return dl.randn(2, 3):gt(0) end},
  {id = "Z", kind = "tensor", make = function() return dl.tensor(0.5) end},
}

-- bad values: id, maker, and for which kinds of argument an error is the only
-- right answer (MUST); elsewhere the call may return, but must not crash and
-- an error must still name the function
local BAD = {
  {id = "nil", make = function() return nil end},
  {id = "'abc'", make = function() return "abc" end},
  {id = "'2'", make = function() return "2" end},
  {id = "true", make = function() return true end},
  {id = "function", make = function() return function() end end},
  {id = "{}", make = function() return {} end},
  {id = "{a=1}", make = function() return {a = 1} end},
  {id = "{'x'}", make = function() return {"x"} end},
  {id = "{1,nil,3}", make = function() return {1, nil, 3} end},
  {id = "-1", make = function() return -1 end},
  {id = "0", make = function() return 0 end},
  {id = "2^62", make = function() return 2 ^ 62 end},
  {id = "NaN", make = function() return 0 / 0 end},
  {id = "inf", make = function() return math.huge end},
  {id = "-inf", make = function() return -math.huge end},
  {id = "2.5", make = function() return 2.5 end},
  {id = "int64 tensor", make = function() return dl.ones(2, 3):long() end},
  {id = "bool tensor", make = function() return dl.ones(2, 3):gt(0) end},
  {id = "float64 tensor", make = function() return dl.randn(2, 3):double() end},
  {id = "4x5 tensor", make = function() return dl.randn(4, 5) end},
  {id = "0-d tensor", make = function() return dl.tensor(0.5) end},
  {id = "empty tensor", make = function() return dl.zeros(0, 3) end},
  {id = "non-contiguous", make = function() return dl.randn(3, 2):t() end},
  {id = "closed tensor", make = closed_tensor},
  {id = "grad leaf", make = function() return dl.randn(2, 3):requires_grad_() end},
}
-- a tensor on another device, where one is (spec/run.sh lends the sweep the
-- stand-in CUDA plugin of spec/c/fake_cuda_plugin.c: its tensors are real,
-- its kernels fail on purpose)
if dl.cuda.is_available() then
  BAD[#BAD + 1] = {id = "cuda tensor", make = function() return dl.randn(2, 3):to("cuda") end}
end

-- (a boolean is a scalar where a tensor or a number goes, as in PyTorch: t + true)
local NOT_TENSOR = {["'abc'"] = true, ["'2'"] = true, ["function"] = true, ["{}"] = true,
  ["{a=1}"] = true, ["{'x'}"] = true, ["{1,nil,3}"] = true, ["closed tensor"] = true}
-- ({} may be an empty size list where sizes go; a table given must be a list)
local NOT_NUMBER = {["'abc'"] = true, ["function"] = true, ["{a=1}"] = true,
  ["{'x'}"] = true, ["{1,nil,3}"] = true, ["closed tensor"] = true}
local NOT_INTEGER = {NaN = true, inf = true, ["-inf"] = true, ["2.5"] = true, ["true"] = true}
local NOT_LIST = {["'abc'"] = true, ["true"] = true, ["function"] = true, ["{a=1}"] = true,
  ["{'x'}"] = true, ["{1,nil,3}"] = true, ["closed tensor"] = true}
local NOT_OBJECT = {["'abc'"] = true, ["'2'"] = true, ["true"] = true, ["function"] = true, ["-1"] = true,
  ["0"] = true, ["2.5"] = true, ["closed tensor"] = true}
local NOT_FUNCTION = {["'abc'"] = true, ["'2'"] = true, ["true"] = true, ["{}"] = true, ["{a=1}"] = true,
  ["-1"] = true, ["0"] = true, ["2.5"] = true}
local NOT_STRING = {["true"] = true, ["function"] = true, ["{}"] = true, ["{a=1}"] = true, ["{'x'}"] = true,
  ["closed tensor"] = true}

-- the kind of a working argument: what it is, refined by a probe for numbers
local function kind_of(v)
  local tv = type(v)
  if dl.is_tensor(v) then return "tensor" end
  if tv == "number" then return math.type(v) == "integer" and "integer" or "real" end
  if tv == "table" then
    if getmetatable(v) then return "object" end
    if #v > 0 or next(v) == nil then return "list" end
    return "options"
  end
  return tv -- string, boolean, function, nil, userdata
end

-- must this bad value be refused in place of an argument of this kind?
local function must_refuse(kind, bad, target, pos, is_self)
  if bad == "nil" then -- (t.grad = nil clears it)
    return kind ~= "nil" and kind ~= "options" and kind ~= "boolean" and target.kind ~= "setter"
  end
  if kind == "tensor" then
    if bad == "grad leaf" then
      -- in-place changes of a leaf that requires grad are refused, as in PyTorch
      -- (detach_ and requires_grad_ are the ways to change a leaf's grad flag)
      return target.short and target.short:sub(-1) == "_" and (is_self or pos == 1)
        and target.kind ~= "cmethod" and target.short ~= "requires_grad_" and target.short ~= "detach_"
    end
    return NOT_TENSOR[bad] or false
  elseif kind == "integer" then return NOT_NUMBER[bad] or NOT_INTEGER[bad] or false
  elseif kind == "real" then return NOT_NUMBER[bad] or false
  elseif kind == "list" then return NOT_LIST[bad] or false
  elseif kind == "object" then return NOT_OBJECT[bad] or false
  elseif kind == "function" then return NOT_FUNCTION[bad] or false
  elseif kind == "string" then return NOT_STRING[bad] or false
  end
  return false
end

---------------------------------------------------------------------------
-- calling

-- the global state a call may change, put back after each target
local function save_state()
  return {grad = dl.is_grad_enabled(), threads = dl.get_num_threads(), print = dl.get_printoptions(),
    rng = dl.get_rng_state()}
end
local function restore_state(s)
  dl.set_grad_enabled(s.grad)
  dl.set_num_threads(s.threads)
  dl.set_printoptions(s.print)
  dl.set_rng_state(s.rng)
end

local real_stderr = io.stderr
local function quiet_call(fn, args, n)
  return pcall(fn, table.unpack(args, 1, n))
end

-- a fresh copy of a working call's arguments (in-place calls change them)
local function fresh_args(call)
  local args = {}
  for i = 1, call.n do args[i] = call.make[i]() end
  return args
end

-- search the pool for a working call: self first (methods), then 0..3 args
local function search(target, self_makers)
  local function try(makers)
    local call = {make = makers, n = #makers}
    local ok = quiet_call(target.fn, fresh_args(call), call.n)
    if ok then return call end
  end
  local prefixes = self_makers or {{}}
  for len = 0, 3 do
    for _, pre in ipairs(prefixes) do
      local idx = {}
      for i = 1, len do idx[i] = 1 end
      while true do
        local makers = {}
        for _, m in ipairs(pre) do makers[#makers + 1] = m end
        for i = 1, len do makers[#makers + 1] = POOL[idx[i]].make end
        local call = try(makers)
        if call then return call end
        local i = len
        while i >= 1 and idx[i] == #POOL do idx[i] = 1; i = i - 1 end
        if i < 1 then break end
        idx[i] = idx[i] + 1
      end
    end
  end
end

---------------------------------------------------------------------------
-- judging one mutated call

local function names_function(msg, target, receiver)
  if type(msg) ~= "string" then msg = tostring(msg) end
  -- raised in a callback of seeds.lua (the user's code, given a bad value by
  -- the function under test): the error is the callback's own, and names the op it called
  if msg:find("^[^\n]*seeds%.lua:%d+: ") then return true end
  local accepted = {}
  for _, n in ipairs(names_of[target.fn] or {}) do accepted[#accepted + 1] = n end
  if target.kind == "method" or target.kind == "function" then
    -- a C function named once, under its shortest name, wherever it is reached
    for _, n in ipairs(names_of[target.fn] or {}) do
      local short = n:match("[.:]([%w_]+)$")
      if short then
        accepted[#accepted + 1] = "Tensor:" .. short
        accepted[#accepted + 1] = "dl." .. short
      end
    end
  elseif target.kind == "meta" then
    accepted[#accepted + 1] = "dl." .. METAOPS[target.short]
    accepted[#accepted + 1] = "dl.Tensor"
  elseif target.kind == "setter" then
    accepted[#accepted + 1] = "Tensor." .. target.short
  elseif target.kind == "class" then
    accepted[#accepted + 1] = target.short
  elseif target.kind == "cmethod" then
    accepted[#accepted + 1] = target.class.short
    accepted[#accepted + 1] = target.class.name
    -- the method by name, called on a subclass: "SGD:step", "dl.optim.SGD: step expects ..."
    if msg:find("%f[%w_]" .. target.short .. "%f[^%w_]") then return true end
  end
  -- the class of the instance it was called on ("SGD" for Optimizer:add_param_group)
  local mt = target.kind == "cmethod" and type(receiver) == "table" and getmetatable(receiver)
  if type(mt) == "table" and type(rawget(mt, "__name")) == "string" then accepted[#accepted + 1] = rawget(mt, "__name") end
  for _, n in ipairs(accepted) do
    if msg:find(n, 1, true) then return true end
  end
  return false
end

local results = {calls = 0, targets = 0, covered = 0, failures = {}, allowed = 0}

local function fail(target, what, detail)
  local line = string.format("%s: %s: %s", target.name, what, detail)
  results.failures[#results.failures + 1] = line
  print("FAIL " .. line)
end

local function sweep_target(target, call)
  local is_method = target.kind == "method" or target.kind == "cmethod" or target.kind == "meta"
    or target.kind == "setter"
  local good = fresh_args(call)
  for pos = 1, call.n do
    local kind = kind_of(good[pos])
    if kind == "integer" then
      -- an integer argument that takes 2.5 is a real one (a scalar, a rate)
      local args = fresh_args(call)
      args[pos] = 2.5
      if quiet_call(target.fn, args, call.n) then kind = "real" end
    end
    for _, bad in ipairs(BAD) do
      local key = target.name .. " #" .. pos .. " " .. bad.id
      local args = fresh_args(call)
      args[pos] = bad.make()
      results.calls = results.calls + 1
      local ok, err = quiet_call(target.fn, args, call.n)
      local must = must_refuse(kind, bad.id, target, pos, is_method and pos == 1)
      local what = string.format("argument #%d <- %s", pos, bad.id)
      if allow[key] or allow[target.name .. " #" .. pos .. " *"] then
        results.allowed = results.allowed + 1
      elseif pos == 1 and (target.kind == "setter" or (target.kind == "cmethod" and target.short:sub(1, 2) == "__")) then
        -- t.grad = v, m(x), <close>: Lua itself passes the instance
      elseif ok and must and not (target.kind == "cmethod" and pos == 1) then
        -- (a Lua method that never reads self may take any: m.forward(x) is Lua's own slip)
        fail(target, "silent acceptance", what .. " (a " .. kind .. " argument) returned")
      elseif not ok and not names_function(err, target, args[1]) then
        fail(target, "error does not name it", what .. ": " .. tostring(err))
      end
    end
  end
end

---------------------------------------------------------------------------
-- the working call of each target

local instance_of = {} -- class target -> maker of a working instance

local function working_call(target)
  local seed = seeds.calls[target.name]
  if seed == false then return nil, "skipped" end
  if seed then
    local makers = seed()
    local call = {make = makers, n = #makers}
    local ok, err = quiet_call(target.fn, fresh_args(call), call.n)
    if not ok then return nil, "its seed call fails: " .. tostring(err) end
    return call
  end
  if target.kind == "method" or target.kind == "meta" or target.kind == "setter" then
    local selves = {}
    for i = 1, 3 do selves[i] = {POOL[i].make} end
    if target.kind == "setter" then
      local call = nil
      for _, s in ipairs(selves) do
        for _, v in ipairs({POOL[1].make, function() return true end}) do
          call = call or (quiet_call(target.fn, {s[1](), v()}, 2) and {make = {s[1], v}, n = 2})
        end
      end
      return call
    end
    return search(target, selves)
  elseif target.kind == "cmethod" then
    local inst = seeds.instances[target.class.name] or instance_of[target.class]
    if not inst then return nil, "no working instance of " .. target.class.name end
    return search(target, {{inst}})
  end
  return search(target)
end

-- the planted functions of --self-test
local function plant()
  dl.sweep_selftest = {
    takes_anything = function(t)
      if t == nil then error("dl.sweep_selftest.takes_anything: bad argument #1 (value expected)", 0) end
      return t
    end,
    unnamed_error = function(t)
      if not dl.is_tensor(t) then error("something went wrong", 0) end
      return t
    end,
  }
  opts.only = "dl.sweep_selftest."
end

local function main()
  if opts.self_test then plant() end
  -- what the library writes to io.stderr (progress bars) is not the sweep's output
  io.stderr = assert(io.open("sweep-stderr.log", "w"))
  build_surface()
  local env_state = save_state()
  -- classes first: their methods need an instance
  local order = {}
  for _, t in ipairs(targets) do if t.kind == "class" then order[#order + 1] = t end end
  for _, t in ipairs(targets) do if t.kind ~= "class" then order[#order + 1] = t end end
  -- the sample: a fixed pseudo-random subset (classes always, for their instances)
  local pick = {}
  if opts.sample then
    local rng, n = opts.seed, 0
    local idx = {}
    for i, t in ipairs(order) do if t.kind ~= "class" then idx[#idx + 1] = i else pick[i] = true end end
    for i = #idx, 2, -1 do
      rng = (rng * 1103515245 + 12345) % 2147483648
      local j = rng % i + 1
      idx[i], idx[j] = idx[j], idx[i]
    end
    for i = 1, math.min(opts.sample, #idx) do pick[idx[i]] = true; n = n + 1 end
  end
  local t0 = os.clock()
  for i, target in ipairs(order) do
    if (not opts.sample or pick[i]) and (not opts.only or target.name:find(opts.only, 1, true)) then
      results.targets = results.targets + 1
      if opts.verbose then real_stderr:write("sweep: ", target.name, "\n") end
      local call, why = working_call(target)
      if target.kind == "methods" then
        -- a method table: its methods are swept, on seeds.instances[name]
      elseif call then
        results.covered = results.covered + 1
        if target.kind == "class" then
          instance_of[target] = function() return target.fn(table.unpack(fresh_args(call), 1, call.n)) end
        end
        sweep_target(target, call)
      elseif why ~= "skipped" and not seeds.no_call[target.name] then
        fail(target, "no working call", (why or "the search found none") .. "; add one to spec/sweep/seeds.lua")
      end
      restore_state(env_state)
      collectgarbage()
    elseif target.kind == "class" then
      local call = working_call(target)
      if call then
        instance_of[target] = function() return target.fn(table.unpack(fresh_args(call), 1, call.n)) end
      end
    end
  end
  print(string.format("sweep: %d names (%d with a working call), %d calls, %d allowed, %d failures, %.1f s",
    results.targets, results.covered, results.calls, results.allowed, #results.failures, os.clock() - t0))
  io.stdout:flush()
  if opts.self_test then
    local all = table.concat(results.failures, "\n")
    local ok = all:find("takes_anything: silent acceptance", 1, true)
      and all:find("unnamed_error: error does not name it", 1, true)
    print(ok and "sweep self-test: both planted faults caught" or "sweep self-test: a planted fault was missed")
    os.exit(ok and 0 or 1)
  end
  os.exit(#results.failures == 0 and 0 or 1)
end

main()
