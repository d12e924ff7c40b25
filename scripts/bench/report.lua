-- report.lua RAW [RATIOS [BUSY]] — turns the lines that run.sh collected
-- into the markdown of `make bench`, and (optionally) writes RATIOS, the
-- speed ratios plot_ratios.lua draws. BUSY (optional) holds the runs beside
-- a busy process, in RAW's form with settings "busy<T>" (T threads, or
-- PyTorch's "busy<torch>+<OpenBLAS>") and "busy1": the contention table.
-- RAW holds, in run order,
--   RESULT <workload> <impl>[@<setting>] <value> <unit>   one figure of one run
--   FAIL <workload> <impl>[@<setting>] <reason...>        a failed run
-- impl is dlua / pytorch, dlua_<variant> / pytorch_<variant> (a further row,
-- "<workload> (<variant>)"), or anything else: a reference figure (e.g.
-- cblas) that the reference table compares with the dlua rows of its
-- workload. No setting: one thread. A setting: dlua's "<T>" (T threads), or
-- PyTorch's "<torch threads>+<OpenBLAS threads>"; the table shows dlua at T
-- threads and the best PyTorch setting for each row.
-- Each cell is the median over runs. A unit ending in "/s" is a rate (higher
-- is better), "%" an accuracy (the ratio column shows the difference in
-- points), any other a time or a size (lower is better); ratios are always
-- "their time / dlua's time", so >1 means dlua is faster.
-- Plain Lua 5.4 (no dlua), so a broken build still gets its report.

local path = assert(arg[1], "usage: lua5.4 report.lua RAW [RATIOS [BUSY]]")
local ratios_path = arg[2] ~= "" and arg[2] or nil
local busy_path = arg[3]

---------------------------------------------------------------------------
-- what the figures are measured against

-- GEMM FLOPs of one forward + backward pass of an MLP with these layer
-- sizes over `rows` rows: the forward pass costs 2*rows*in*out per layer;
-- the backward pass needs the weight gradient of every layer (the same
-- count again) and the input gradient of every layer but the first (its
-- input is the data): 3x the forward, less layer 1's input gradient.
local function mlp_flops(sizes, rows)
  local fwd = 0
  for i = 1, #sizes - 1 do fwd = fwd + 2 * rows * sizes[i] * sizes[i + 1] end
  return 3 * fwd - 2 * rows * sizes[1] * sizes[2]
end

-- the same count for the demo CNN (scripts/train_fashion_cnn.lua), its
-- convolutions as GEMMs: {in, out, taps, output pixels} per layer, the
-- first one's input gradient not needed
local function cnn_flops(images)
  local layers = {{1, 32, 9, 28 * 28}, {32, 64, 9, 14 * 14}, {64, 64, 9, 7 * 7}, {3136, 128, 1, 1}, {128, 10, 1, 1}}
  local fwd = 0
  for _, l in ipairs(layers) do fwd = fwd + 2 * l[1] * l[2] * l[3] * l[4] end
  local first = layers[1]
  return images * (3 * fwd - 2 * first[1] * first[2] * first[3] * first[4])
end

-- FLOPs per unit of each workload's figure (per op, step or epoch); the
-- floor is these over the sgemm rate of the same run (matmul-1024, dlua,
-- at the same thread count)
local FLOPS = {
  ["matmul-64"] = 2 * 64 ^ 3,
  ["matmul-1024"] = 2 * 1024 ^ 3,
  ["mlp-step"] = mlp_flops({8, 64, 64, 64, 1}, 64),
  ["mlp-nn"] = mlp_flops({8, 64, 64, 64, 1}, 64),
  ["housing-mlp"] = mlp_flops({8, 64, 64, 64, 1}, 20640),
  ["fashion-mlp"] = mlp_flops({784, 256, 128, 100, 10}, 60000),
  ["cnn-epoch"] = cnn_flops(469 * 128),
}
local SGEMM = "matmul-1024"

-- the issue's targets, by row label: ratio (one thread, at least), best
-- (ratio at T threads against PyTorch's best setting), best_floor (dlua's
-- fraction of the T-thread floor), points (largest accuracy difference)
local TARGETS = {
  ["tiny-op"] = {ratio = 4},
  ["matmul-64"] = {ratio = 2},
  ["adam-step-1M"] = {ratio = 1.5},
  ["startup"] = {ratio = 50},
  ["rss"] = {ratio = 4},
  ["housing-mlp (index)"] = {ratio = 5},
  ["fashion-mlp"] = {best = 1.4, best_floor = 0.8},
  ["fashion-mlp (accuracy)"] = {points = 1},
  ["conv-lenet"] = {ratio = 1.5, best = 1.5},
  ["conv-resblock"] = {ratio = 1.5, best = 1.5},
  ["conv-depthwise"] = {ratio = 1.5, best = 1.5},
  ["bn2d-step"] = {ratio = 1.5, best = 1.5},
  ["cnn-epoch"] = {ratio = 1.5, best = 1.5, best_floor = 0.6},
  ["seq-lstm"] = {ratio = 2, best = 2},
  ["seq-gru"] = {ratio = 2, best = 2},
  ["seq-transformer"] = {ratio = 2, best = 2},
  ["seq-generate"] = {ratio = 2, best = 2},
}

-- the issue's targets against a reference figure, by row label: at most this
-- time ratio (for rates, the inverse: all-reduce >= 0.9x MPI's bandwidth,
-- add-1M >= 0.9 of the copy bandwidth)
local REF_LIMITS = {
  -- element-wise adds at >= 0.9 of the copy bandwidth of the same run
  ["add-1M"] = 1 / 0.9,
  ["add-1M (inplace)"] = 1 / 0.9,
}
for _, size in ipairs({"4KB", "1MB", "64MB"}) do
  REF_LIMITS["allreduce-" .. size] = 1 / 0.9
  REF_LIMITS["allreduce-" .. size .. " (unchecked)"] = 1 / 0.9
end

-- comparisons within one side: {workload, variant, against, at most}
local COMPARE = {
  {"housing-mlp", "DataLoader", "index", 1.2},
}

---------------------------------------------------------------------------
-- reading RAW

local order = {}   -- rows {workload =, variant =, label =} in first-seen order
local row_of = {}  -- "workload\0variant" -> row
local refs = {}    -- workload -> {reference impl names in order}
local samples = {} -- key -> {values}
local units = {}   -- key -> unit
local failed = {}  -- key -> true
local failures = {}
local dlua_tags = {} -- settings dlua ran at, e.g. {"2"}

local function key(workload, impl, tag) return workload .. "\0" .. impl .. "\0" .. (tag or "") end

-- dlua_out -> "dlua", "out"; pytorch -> "pytorch", ""; cblas -> nil
local function side_of(impl)
  local side, variant = impl:match("^(dlua)_?(.*)$")
  if not side then side, variant = impl:match("^(pytorch)_?(.*)$") end
  return side, variant
end

local function note(workload, full)
  local impl, tag = full:match("^([^@]+)@(.+)$")
  impl = impl or full
  local side, variant = side_of(impl)
  if side then
    local k = workload .. "\0" .. variant
    if not row_of[k] then
      local r = {workload = workload, variant = variant,
        label = variant == "" and workload or string.format("%s (%s)", workload, variant)}
      row_of[k] = r
      order[#order + 1] = r
    end
    if side == "dlua" and tag then
      local seen = false
      for _, t in ipairs(dlua_tags) do seen = seen or t == tag end
      if not seen then dlua_tags[#dlua_tags + 1] = tag end
    end
  else
    refs[workload] = refs[workload] or {}
    local seen = false
    for _, r in ipairs(refs[workload]) do seen = seen or r == impl end
    if not seen then refs[workload][#refs[workload] + 1] = impl end
  end
  return key(workload, impl, tag)
end

for line in io.lines(path) do
  local f = {}
  for word in line:gmatch("%S+") do f[#f + 1] = word end
  if f[1] == "RESULT" and #f >= 5 and tonumber(f[4]) then
    local k = note(f[2], f[3])
    samples[k] = samples[k] or {}
    table.insert(samples[k], tonumber(f[4]))
    units[k] = f[5]
  elseif f[1] == "FAIL" and #f >= 3 then
    -- a failed multi-thread run adds no row of its own
    if not f[3]:find("@", 1, true) then failed[note(f[2], f[3])] = true end
    failures[#failures + 1] = string.format("%s %s: %s", f[2], f[3], table.concat(f, " ", 4))
  end
end

---------------------------------------------------------------------------
-- cells

local function median(t)
  if not t or #t == 0 then return nil end
  local s = table.move(t, 1, #t, 1, {})
  table.sort(s)
  local m = #s // 2
  return #s % 2 == 1 and s[m + 1] or (s[m] + s[m + 1]) / 2
end

local function fmt(v)
  if not v then return "-" end
  local a = math.abs(v)
  if a >= 100 then return string.format("%.0f", v) end
  if a >= 10 then return string.format("%.1f", v) end
  return string.format("%.3g", v)
end

local function is_rate(unit) return unit and unit:match("/s$") ~= nil end

-- value, text, unit of one figure
local function fig(workload, impl, tag)
  local k = key(workload, impl, tag)
  local v = median(samples[k])
  if failed[k] and not v then return nil, "failed", nil end
  return v, fmt(v), units[k]
end

-- their time / dlua's time, whichever way the unit points
local function speedup(d, other, unit)
  if not (d and other and d > 0 and other > 0) then return nil end
  return is_rate(unit) and d / other or other / d
end

local function impl_of(side, variant) return variant == "" and side or side .. "_" .. variant end

-- seconds per unit prefix of a time unit ("us/step" -> 1e-6), nil otherwise
local SCALE = {ns = 1e-9, us = 1e-6, ms = 1e-3, s = 1}
local function seconds_per(unit)
  return unit and SCALE[unit:match("^(%a+)/") or unit] or nil
end

-- floor (in the row's unit) and dlua's fraction of it, given the sgemm rate
-- (GFLOP/s) of the same thread count
local function floor_of(workload, d, unit, rate)
  local flops = FLOPS[workload]
  if not (flops and d and rate and rate > 0 and unit) then return nil, nil end
  if is_rate(unit) then
    if unit ~= "GFLOP/s" then return nil, nil end
    return rate, d / rate
  end
  local per = seconds_per(unit)
  if not per then return nil, nil end
  local t = flops / (rate * 1e9) / per
  return t, t / d
end

-- the sgemm rate a floor divides by: the best round's, not the median (other
-- load on a shared machine only ever lowers a rate, and a low rate would
-- lower the floor and flatter every fraction of it)
local function best_rate(tag)
  local t = samples[key(SGEMM, "dlua", tag)]
  if not t or #t == 0 then return nil end
  return math.max(table.unpack(t))
end
local rate1 = best_rate()
local T = dlua_tags[1]
-- T threads can always run at least one thread's rate: a T-thread sgemm
-- figure below it would make a floor that is no floor
local rateT = T and best_rate(T)
if rateT and rate1 then rateT = math.max(rateT, rate1) end

-- PyTorch's multi-thread settings of a row: {tag = median} and the count of
-- runs of the most-run setting
local function pytorch_settings(workload, variant)
  local prefix = key(workload, impl_of("pytorch", variant), "")
  local by_tag, most = {}, 0
  for k, s in pairs(samples) do
    if k:sub(1, #prefix) == prefix and #k > #prefix then
      by_tag[k:sub(#prefix + 1)] = median(s)
      most = math.max(most, #s)
    end
  end
  return by_tag, most
end

-- PyTorch's best multi-thread setting for a row: value, setting. run.sh
-- runs every setting in the first round and only the fastest after it, so
-- the best is taken among the settings with the most runs.
local function pytorch_best(workload, variant, unit)
  local by_tag, most = pytorch_settings(workload, variant)
  local prefix = key(workload, impl_of("pytorch", variant), "")
  local best, best_tag
  for tag, v in pairs(by_tag) do
    local better = best == nil or (is_rate(unit) and v > best) or (not is_rate(unit) and v < best)
    if #samples[prefix .. tag] == most and better then best, best_tag = v, tag end
  end
  return best, best_tag
end

local function pct(v) return v and string.format("%.2f", v) or "-" end

---------------------------------------------------------------------------
-- the main table

local out = {}
local function emit(s) out[#out + 1] = s end
local ratios = {} -- for the plot: {label, one-thread ratio, T-thread ratio}

local tT = T and (T .. " thr") or "T thr"
emit(string.format("| workload | unit | dlua | PyTorch | ratio | floor | of floor | dlua %s | PyTorch best %s | ratio %s | floor %s | of floor %s | target |",
  tT, tT, tT, tT, tT))
emit("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
local runs, any_T = 0, false
for _, r in ipairs(order) do
  local w, v = r.workload, r.variant
  local d, ds, du = fig(w, impl_of("dlua", v))
  local p, ps, pu = fig(w, impl_of("pytorch", v))
  local unit = du or pu or "-"
  local same = not (du and pu and du ~= pu)
  if not same then unit = du .. " vs " .. pu end
  local ratio, ratio_s
  if unit == "%" then
    ratio_s = (d and p) and string.format("%+.2f pt", d - p) or "-"
  else
    ratio = same and speedup(d, p, unit) or nil
    ratio_s = ratio and string.format("%.2f", ratio) or "-"
  end
  local fl, frac = floor_of(w, d, du, rate1)
  -- T threads
  local dT, dTs
  if T then dT, dTs = fig(w, impl_of("dlua", v), T) end
  local pT, pT_tag = pytorch_best(w, v, unit)
  local ratioT = (dT and pT) and speedup(dT, pT, unit) or nil
  local flT, fracT = floor_of(w, dT, du, rateT)
  if dT or pT then any_T = true end
  -- target
  local goals, tg = {}, TARGETS[r.label]
  local function verdict(ok) return ok == nil and "no figure" or (ok and "met" or "not met") end
  if tg then
    if tg.ratio then goals[#goals + 1] = string.format(">= %gx: %s", tg.ratio, verdict(ratio and ratio >= tg.ratio)) end
    if tg.best then
      goals[#goals + 1] = string.format(">= %gx at %s: %s", tg.best, tT, verdict(ratioT and ratioT >= tg.best))
    end
    if tg.best_floor then
      goals[#goals + 1] = string.format(">= %.2f of floor at %s: %s", tg.best_floor, tT,
        verdict(fracT and fracT >= tg.best_floor))
    end
    if tg.points then
      local ok
      if d and p then ok = math.abs(d - p) <= tg.points end
      goals[#goals + 1] = string.format("within %g pt: %s", tg.points, verdict(ok))
    end
  end
  emit(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |",
    r.label, unit, ds, ps, ratio_s, fmt(fl), pct(frac),
    T and dTs or "-", pT and string.format("%s (%s)", fmt(pT), pT_tag) or "-",
    ratioT and string.format("%.2f", ratioT) or "-", fmt(flT), pct(fracT),
    #goals > 0 and table.concat(goals, "; ") or ""))
  if unit ~= "%" and unit ~= "MB" and (ratio or ratioT) then
    ratios[#ratios + 1] = {r.label, ratio, ratioT}
  end
  for _, side in ipairs({"dlua", "pytorch"}) do
    runs = math.max(runs, #(samples[key(w, impl_of(side, v), "")] or {}))
  end
end
emit("")
emit(string.format("ratio = PyTorch's figure / dlua's for times and sizes, dlua's / PyTorch's for rates: "
  .. ">1 means dlua is faster (or smaller). Each figure is the median of up to %d runs.", runs))
if rate1 then emit(string.format("floor = the workload's GEMM FLOPs / the sgemm rate of this run (matmul-1024, dlua, its best round: %s GFLOP/s "
  .. "on one thread%s, never less than the one-thread rate); of floor = floor / dlua's time, 1.00 = every FLOP at sgemm speed. "
  .. "FLOPs: 2mnk per GEMM; forward + backward of an MLP = 3x its forward GEMM FLOPs, less the "
  .. "input gradient of layer 1 (2 x rows x in x out of that layer), which nothing needs; element-wise work, "
  .. "the loss and the optimiser count nothing.", fmt(rate1), rateT and string.format(", %s at %s", fmt(rateT), tT) or "")) end
if any_T then
  local tried = {}
  for _, r in ipairs(order) do
    local by_tag = pytorch_settings(r.workload, r.variant)
    local tags = {}
    for tag in pairs(by_tag) do tags[#tags + 1] = tag end
    table.sort(tags)
    if #tags > 0 then
      for i, tag in ipairs(tags) do tags[i] = string.format("%s %s", tag, fmt(by_tag[tag])) end
      tried[#tried + 1] = string.format("%s: %s", r.label, table.concat(tags, ", "))
    end
  end
  emit(string.format("%s: dlua with dl.set_num_threads(%s); PyTorch best = the fastest of its settings "
    .. "\"torch threads+OpenBLAS threads\", named in brackets. Timed in wall time. "
    .. "PyTorch's settings (first-round figure; the winner: median of all its runs): %s.",
    tT, T or "T", table.concat(tried, "; ")))
end
if row_of["fashion-mlp\0accuracy"] or row_of["rss\0"] then emit("fashion-mlp (accuracy): test accuracy after 3 epochs from seed 0, once per side; "
  .. "the ratio column gives dlua - PyTorch in points. rss: peak resident memory of the housing-mlp run.") end

---------------------------------------------------------------------------
-- references: how far each dlua row is from the bare library it calls, and
-- one loop against another of the same side

local header = false
local function ref_row(label, rv, rs, mv, ms, unit, limit)
  if not header then
    emit("")
    emit("| comparison | reference | measured | measured / reference | unit | target |")
    emit("|---|---:|---:|---:|---|---|")
    header = true
  end
  local over, over_s = nil, "-"
  if mv and rv and mv > 0 and rv > 0 then
    over = is_rate(unit) and rv / mv or mv / rv
    over_s = string.format("%.2f", over)
  end
  local goal = ""
  if limit then
    goal = string.format("<= %.3gx: %s", limit, over and (over <= limit and "met" or "not met") or "no figure")
  end
  emit(string.format("| %s | %s | %s | %s | %s | %s |", label, rs, ms, over_s, unit or "-", goal))
end
for _, r in ipairs(order) do
  for _, ref in ipairs(refs[r.workload] or {}) do
    local rv, rs, ru = fig(r.workload, ref)
    local d, ds, du = fig(r.workload, impl_of("dlua", r.variant))
    if du == ru or not (du and ru) then
      ref_row(string.format("dlua %s vs %s", r.label, ref), rv, rs, d, ds, ru or du, REF_LIMITS[r.label])
    end
  end
end
for _, c in ipairs(COMPARE) do
  local w, v, against, limit = c[1], c[2], c[3], c[4]
  for _, side in ipairs({"dlua", "pytorch"}) do
    local mv, ms, mu = fig(w, impl_of(side, v))
    local rv, rs = fig(w, impl_of(side, against))
    if mv or rv then
      ref_row(string.format("%s %s (%s) vs (%s)", side == "dlua" and "dlua" or "PyTorch", w, v, against),
        rv, rs, mv, ms, mu, side == "dlua" and limit or nil)
    end
  end
end
if header then
  emit("")
  emit("measured / reference = the measured time / the reference's time: 1.00 means no overhead over the reference.")
end

---------------------------------------------------------------------------
-- under contention: each side at its multi-thread setting against itself
-- at one thread, both beside one busy process (wall time)

local BUSY_LIMIT = 1.1 -- the issue's: default threads within 1.1x of one thread
if busy_path then
  local busy, busy_order = {}, {}
  for line in io.lines(busy_path) do
    local w, impl, variant, tag, v, unit = line:match("^RESULT (%S+) (%a+)_?(%S-)@busy(%S+) (%S+) (%S+)")
    if w and variant ~= "" then w = string.format("%s (%s)", w, variant) end
    if w and tonumber(v) then
      if not busy[w] then
        busy[w] = {unit = unit}
        busy_order[#busy_order + 1] = w
      end
      local k = impl .. "@" .. tag
      busy[w][k] = busy[w][k] or {}
      table.insert(busy[w][k], tonumber(v))
    elseif line:match("^FAIL") then
      failures[#failures + 1] = "under contention: " .. line:sub(6)
    end
  end
  if #busy_order > 0 then
    emit("")
    emit(string.format("| under contention | unit | dlua %s | dlua 1 thr | %s / 1 thr | PyTorch best %s | PyTorch 1 thr | %s / 1 thr | target |",
      tT, tT, tT, tT))
    emit("|---|---|---:|---:|---:|---:|---:|---:|---|")
    for _, w in ipairs(busy_order) do
      local b = busy[w]
      -- time ratios: the multi-thread run's time over the one-thread run's
      local function slowdown(many, one)
        if not (many and one) then return nil end
        return is_rate(b.unit) and one / many or many / one
      end
      local d1 = median(b["dlua@1"])
      local dT = T and median(b["dlua@" .. T])
      local p1, pT, pT_tag = median(b["pytorch@1"]), nil, nil
      for k, s in pairs(b) do
        local tag = k:match("^pytorch@(.+%+.+)$")
        if tag then pT, pT_tag = median(s), tag end
      end
      local sd, sp = slowdown(dT, d1), slowdown(pT, p1)
      emit(string.format("| %s | %s | %s | %s | %s | %s | %s | %s | <= %gx: %s |", w, b.unit, fmt(dT), fmt(d1),
        sd and string.format("%.2f", sd) or "-", pT and string.format("%s (%s)", fmt(pT), pT_tag) or "-", fmt(p1),
        sp and string.format("%.2f", sp) or "-", BUSY_LIMIT, sd and (sd <= BUSY_LIMIT and "met" or "not met") or "no figure"))
    end
    emit("")
    emit("under contention: the bench starts one busy process (`yes > /dev/null`) beside each run and stops it after;" ..
      " wall time. x / 1 thr = the multi-thread run's time over the one-thread run's, both beside the busy process:" ..
      " above 1.00 the threads cost more than they give. dlua lowers its thread count while other processes keep" ..
      " cores busy (src/dl_threads.c); PyTorch runs its best idle setting.")
  end
end

if #failures > 0 then
  emit("")
  emit("Failed runs:")
  for _, f in ipairs(failures) do emit("- " .. f) end
end

io.write(table.concat(out, "\n"), "\n")

if ratios_path then
  local f = assert(io.open(ratios_path, "w"))
  for _, r in ipairs(ratios) do
    f:write(string.format("%s\t%s\t%s\n", r[1], r[2] and string.format("%.6g", r[2]) or "-",
      r[3] and string.format("%.6g", r[3]) or "-"))
  end
  if T then f:write(string.format("#threads\t%s\n", T)) end
  f:close()
end
os.exit(#failures == 0 and 0 or 1)
