-- spec/fuzz/make_corpus.lua — writes the fuzzers' seed files
-- (spec/fuzz/corpus/<format>/): small valid files of every dtype the
-- readers take, made by dlua's own writers (npy, safetensors) or byte by
-- byte (IDX, CSV); checkpoints by dl.save. Run from the repository root: bin/dlua spec/fuzz/make_corpus.lua
local dl = require "dlua"
local C = "spec/fuzz/corpus/"

local function write(path, bytes)
  local f = assert(io.open(path, "wb"))
  f:write(bytes)
  f:close()
end

dl.manual_seed(7)
local samples = {
  f32 = dl.randn(3, 4), f64 = dl.randn(2, 3, {dtype = "float64"}), i64 = dl.randint(-5, 5, {5}),
  u8 = dl.randint(0, 255, {2, 2}):to("uint8"), b1 = dl.tensor({true, false, true}),
  scalar = dl.tensor(2.5), empty = dl.zeros(0, 3), t3 = dl.randn(2, 2, 2),
}
for name, t in pairs(samples) do dl.save(C .. "npy/" .. name .. ".npy", t) end
dl.save(C .. "safetensors/mixed.safetensors", {a = samples.f32, b = samples.i64, c = samples.u8, d = samples.b1})
dl.save(C .. "safetensors/one.safetensors", {["w.weight"] = samples.f64})
dl.save(C .. "safetensors/empty.safetensors", {e = samples.empty, s = samples.scalar})

-- IDX: magic {0, 0, type, ndim}, big-endian u32 sizes, big-endian data
local function idx(code, dims, fmt, values)
  local parts = {string.pack(">BBBB", 0, 0, code, #dims)}
  for _, d in ipairs(dims) do parts[#parts + 1] = string.pack(">I4", d) end
  for _, v in ipairs(values) do parts[#parts + 1] = string.pack(fmt, v) end
  return table.concat(parts)
end
write(C .. "idx/u8.idx", idx(0x08, {2, 3}, ">B", {0, 1, 2, 253, 254, 255}))
write(C .. "idx/i8.idx", idx(0x09, {4}, ">b", {-128, -1, 0, 127}))
write(C .. "idx/i16.idx", idx(0x0B, {2, 2}, ">i2", {-32768, -1, 1, 32767}))
write(C .. "idx/i32.idx", idx(0x0C, {3}, ">i4", {-1, 0, 2147483647}))
write(C .. "idx/f32.idx", idx(0x0D, {1, 2, 2}, ">f", {0.5, -1.5, 3.25, 1e-3}))
write(C .. "idx/f64.idx", idx(0x0E, {2}, ">d", {math.pi, -0.0}))
write(C .. "idx/empty.idx", idx(0x08, {0, 28}, ">B", {}))

write(C .. "csv/header.csv", "a,b,c\n1,2.5,-3e2\n4,,NA\n")
write(C .. "csv/quoted.csv", '"a","b"\r\n"1","2"\r\n"3.5","-4"\r\n')
write(C .. "csv/semicolon.csv", "a;b\n1;2\n3;4\n")
write(C .. "csv/bom_cr.csv", "\239\187\191a,b\r1,2\r\r3,nan\r")
write(C .. "csv/noheader.csv", "1,2\n3,4\n5,6")

-- checkpoints: nested tables of tensors, numbers, strings and booleans,
-- and an optimiser's state_dict after a step
dl.save(C .. "checkpoint/nested.ckpt", {epoch = 3, lr = 0.1, name = "run", flags = {true, false},
  model = {["fc.weight"] = samples.f32, ["fc.bias"] = samples.f64}, ids = samples.i64, mask = samples.b1})
local w = dl.randn(3, {requires_grad = true})
local opt = dl.optim.Adam({w})
w:sum():backward()
opt:step()
dl.save(C .. "checkpoint/adam.ckpt", {opt = opt:state_dict(), step = 1})
dl.save(C .. "checkpoint/empty.ckpt", {})
