-- scripts/train_charlm.lua (`make demo-lm`) on short runs, both models: it
-- trains, prints the held-out loss against the unigram baseline, writes a
-- checkpoint, and generates from it through the key/value cache (or the
-- LSTM's state) with temperature and top-k.
local dl = require "dlua"
local DLUA = os.getenv("DLUA_BIN") or "bin/dlua"

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function have_text() return io.open("/usr/share/games/fortunes/fortunes", "rb") ~= nil end

local function run(args)
  local p = io.popen(string.format("%s scripts/train_charlm.lua %s 2>&1", q(DLUA), args))
  local out = p:read("a")
  return p:close(), out
end

describe("scripts/train_charlm.lua", function()
  for _, variant in ipairs({"", "--lstm"}) do
    it("trains a short run " .. (variant == "" and "(Transformer)" or "(LSTM)") .. ", saves it and generates from it",
      function()
        if not have_text() then return pending("Debian's fortunes package is not installed") end
        local dir = os.tmpname()
        os.remove(dir)
        dir = dir .. "-lm"
        local ok, out = run(string.format("%s --quick --steps 6 --out %s", variant, q(dir)))
        assert.is_true(ok, out)
        local bits, base = out:match("held%-out loss: ([%d.]+) bits/char %(unigram baseline ([%d.]+)%)")
        assert.is_not_nil(bits, out)
        assert(tonumber(base) > 3 and tonumber(base) < 6, "unigram baseline " .. base)
        assert(tonumber(bits) < 8, "held-out loss " .. bits) -- ln(vocabulary) / ln 2 is about 6.8 untrained
        local ck = dl.load(dir .. (variant == "" and "/charlm.ckpt" or "/charlm_lstm.ckpt"))
        assert.equal(variant == "" and "gpt" or "lstm", ck.config.kind)
        assert.equal(ck.config.vocab, #ck.vocab)
        -- PyTorch's names for the same modules
        if variant == "" then
          assert.same({ck.config.vocab, 128}, ck.model["tok.weight"]:size())
          assert.same({384, 128}, ck.model["blocks.0.qkv.weight"]:size())
        else
          assert.same({1024, 64}, ck.model["rnn.weight_ih_l0"]:size())
          assert.same({1024, 256}, ck.model["rnn.weight_hh_l1"]:size())
        end
        local gok, gen = run(string.format("%s --out %s --generate %s --tokens 40 --top-k 5 --temperature 0.7", variant,
          q(dir), q("The ")))
        assert.is_true(gok, gen)
        local text = gen:match("^(.-)\n%-%- 40 tokens")
        assert.is_not_nil(text, gen)
        assert.equal("The ", text:sub(1, 4))
        assert.equal(44, #text)
        os.execute("rm -rf " .. q(dir))
      end)
  end

  it("refuses bad arguments", function()
    local ok, out = run("--steps 0")
    assert.is_falsy(ok)
    assert.truthy(out:find("positive integer", 1, true), out)
    ok, out = run("--frobnicate")
    assert.is_falsy(ok)
    assert.truthy(out:find("unknown argument", 1, true), out)
  end)
end)
