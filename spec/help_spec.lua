-- dl.help and the REPL's help(x) / ?x: the reference entry of a name, found
-- in the docs pages built into the program.
local dl = require "dlua"
local H = require "spec.helper"

local bin = os.getenv("DLUA_BIN") or "bin/dlua"

describe("dl.help", function()
  it("returns the entry of a class, a function or a name, with its page", function()
    local conv = dl.help(dl.nn.Conv2d)
    assert.matches("^dl%.nn%.Conv2d  %(docs/reference/cnn%.md%)", conv)
    assert.truthy(conv:find("in_channels, out_channels, kernel_size", 1, true), conv)
    local adam = dl.help(dl.optim.Adam)
    assert.truthy(adam:find("betas = {0.9, 0.999}", 1, true), adam)
    assert.truthy(dl.help("nn.MultiheadAttention"):find("embed_dim, num_heads", 1, true))
    assert.truthy(dl.help(dl.dist.all_reduce):find("in place on every rank", 1, true))
    -- an alias is found under its main name
    assert.matches("^dl%.dist%.init ", dl.help(dl.dist.init_process_group))
    -- a Tensor method that is also a dl function: the dl function's entry
    assert.matches("^dl%.triu ", dl.help(dl.triu))
  end)

  it("lists what a module holds", function()
    local t = dl.help(dl.data)
    assert.matches("^dl%.data: a module of dl holding ", t)
    assert.truthy(t:find("read_csv", 1, true) and t:find("DistributedSampler", 1, true), t)
  end)

  it("says when there is no entry, or no such name", function()
    assert.matches("no reference entry yet", dl.help("dl.no_such_name"))
    assert.matches("not a public function, class or module of dl", dl.help(42))
  end)

  it("has an entry for every public name: functions, classes and Tensor methods of every module", function()
    local missing, total = {}, 0
    local function check(name)
      total = total + 1
      if dl.help(name):find("no reference entry yet", 1, true) then missing[#missing + 1] = name end
    end
    local function each(t, prefix)
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" and
           (type(v) == "function" or (type(v) == "table" and rawget(v, "__name"))) then
          check(prefix .. k)
        end
      end
    end
    each(dl, "dl.")
    for _, m in ipairs({"nn", "F", "data", "utils", "metrics", "plot", "cuda", "datasets", "cluster", "preprocessing",
                        "autograd", "dist", "optim"}) do
      each(dl[m], "dl." .. m .. ".")
    end
    each(dl.nn.init, "dl.nn.init.")
    each(dl.nn.utils, "dl.nn.utils.")
    each(dl.optim.lr_scheduler, "dl.optim.lr_scheduler.")
    each(dl.data.transforms, "dl.data.transforms.")
    for k, v in pairs(dl.Tensor) do
      if type(k) == "string" and k:sub(1, 1) ~= "_" and type(v) == "function" then check("Tensor:" .. k) end
    end
    table.sort(missing)
    assert.is_true(total > 700, total)
    assert.same({}, missing)
  end)

  it("has an entry for every name of dl.dist, dl.optim and the schedulers", function()
    local missing = {}
    local function each(t, prefix, skip)
      for k, v in pairs(t) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" and not (skip and skip[k]) and
           (type(v) == "function" or type(v) == "table") then
          local text = dl.help(prefix .. k)
          if text:find("no reference entry yet", 1, true) then missing[#missing + 1] = prefix .. k end
        end
      end
    end
    each(dl.dist, "dl.dist.")
    each(dl.optim, "dl.optim.", {lr_scheduler = true, Optimizer = true, required = true})
    each(dl.optim.lr_scheduler, "dl.optim.lr_scheduler.", {LRScheduler = true})
    for _, name in ipairs({"dl.nn.DistributedDataParallel", "dl.data.DistributedSampler"}) do
      if dl.help(name):find("no reference entry yet", 1, true) then missing[#missing + 1] = name end
    end
    table.sort(missing)
    assert.same({}, missing)
  end)
end)

describe("the REPL", function()
  it("prints an entry for help(x) and ?x, and how to use help()", function()
    local out = H.sh("printf 'help(dl.nn.Conv2d)\\n?dl.optim.Adam\\nhelp()\\n' | " .. bin .. " -i")
    assert.truthy(out:find("dl.nn.Conv2d  (docs/reference/cnn.md)", 1, true), out)
    assert.truthy(out:find("dl.optim.Adam  (docs/reference/optim.md)", 1, true), out)
    assert.truthy(out:find("help(x) or ?x prints the reference entry", 1, true), out)
  end)
end)
