-- dlua.nn.spatial: what the layers over spatial dims share (conv.lua,
-- pool.lua, resample.lua): errors naming the layer, per-dim arguments,
-- batched and unbatched input.
local dl = require "dlua"
local checks = require "dlua.checks"
local raise = require("dlua.errors").raise

local is_tensor = dl.is_tensor
local fmt = string.format
local shape_str = checks.shape_str

local M = {}

-- an error naming fn ("dl.F.conv2d: ..."); a module's forward passes nil
-- and its wrapper names the module ("Conv2d(3, 16): ...")
function M.fail(fn, ...)
  local msg = fmt(...)
  raise(fn and fn .. ": " .. msg or msg)
end

-- v (a number or a list of nd integers >= min) as a list of nd, for fn's
-- argument called name
function M.tuple(fn, name, v, nd, min)
  if math.type(v) == "integer" then
    if v < min then M.fail(fn, "%s must be >= %d, got %d", name, min, v) end
    local t = {}
    for i = 1, nd do t[i] = v end
    return t
  end
  if type(v) ~= "table" or is_tensor(v) then
    M.fail(fn, "%s must be an integer or a list of %d integers, got %s", name, nd,
      type(v) == "number" and tostring(v) or type(v))
  end
  checks.list(fn, 1, v)
  if #v ~= nd then M.fail(fn, "%s must have %d values (one per spatial dim), got %d", name, nd, #v) end
  for i = 1, nd do
    if math.type(v[i]) ~= "integer" or v[i] < min then
      M.fail(fn, "%s must hold integers >= %d, got %s", name, min, tostring(v[i]))
    end
  end
  return v
end

function M.tuple_str(t)
  if #t == 1 then return fmt("(%d,)", t[1]) end
  return "(" .. table.concat(t, ", ") .. ")"
end

-- x as [N, C, *S] for nd spatial dims, and whether it came unbatched ([C, *S])
function M.batched(fn, x, nd)
  if not is_tensor(x) then M.fail(fn, "input must be a tensor, got %s", type(x)) end
  local d = x:dim()
  if d == nd + 2 then return x, false end
  if d == nd + 1 then return x:unsqueeze(1), true end
  M.fail(fn, "expected a %dD (unbatched) or %dD (batched) input, got %s", nd + 1, nd + 2, shape_str(x))
end

-- the spatial sizes of y [N, C, L] as dims of x [N, C, *S] with out sizes
function M.spatial_view(y, N, C, out)
  local shape = {N, C}
  for i = 1, #out do shape[2 + i] = out[i] end
  return y:view(shape)
end

return M
