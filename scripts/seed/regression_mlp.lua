-- scripts/seed/regression_mlp.lua — the seed lecture's regression MLP
-- (8-64-64-64-1, ReLU) trained with DataLoader(batch 64, shuffle), Adam
-- lr 1e-3, StepLR(step 10, gamma 0.5) and the MSE loss, on data shaped like
-- California housing (20,640 districts x 8 features, target = median house
-- value in units of $100,000).
--
-- The real file cannot be fetched here, so the data are synthetic, from this
-- generating function (seed 0), with housing-like ranges:
--   MedInc     = clamp(exp(N(log 3.5, 0.45)), 0.5, 15)         median income
--   HouseAge   = U(1, 52)
--   AveRooms   = clamp(3.8 + 0.35 MedInc + N(0, 0.8), 1, 12)
--   AveBedrms  = clamp(0.9 + 0.03 AveRooms + N(0, 0.08), 0.5, 3)
--   Population = clamp(exp(N(7, 0.7)), 3, 35000)
--   AveOccup   = clamp(2.9 + N(0, 0.7), 1, 10)
--   Latitude   = U(32.5, 42)
--   Longitude  = -124.3 + 0.9 (42 - Latitude) + N(0, 0.6)      (the coast runs NW-SE)
--   value = 0.4 + 0.38 MedInc + 0.008 HouseAge
--         + 1.3 exp(-((Lat - 34.05)^2 + (Lon + 118.25)^2) / 0.8)   (Los Angeles)
--         + 1.5 exp(-((Lat - 37.77)^2 + (Lon + 122.42)^2) / 0.5)   (San Francisco)
--         + 0.25 tanh(AveRooms - 5) - 0.35 log(AveOccup / 3)
--         - 0.05 log(Population / 1000) + N(0, 0.35)
--   clamped to [0.15, 5.0] like the census cap.
-- Split 80/20 into train/validation (a fixed permutation), inputs z-scored
-- with the training split's statistics (dl.preprocessing.StandardScaler).
--
-- What to expect: the noise floor is an MSE of about 0.12 (std 0.35); the
-- MLP's validation loss drops quickly in the first epochs and creeps towards
-- that floor as StepLR halves the step every 10 epochs, with the training and
-- validation curves close together (no overfitting at this size). The final
-- validation RMSE ends a little above 0.35. Plot: train/val loss per epoch.
--
--   dlua scripts/seed/regression_mlp.lua [--quick] [--out DIR] [--epochs E]
local dl = require "dlua"
local nn, optim = dl.nn, dl.optim

local t_start = dl._time()

-- the shared command line (scripts/seed/seed_cli.lua)
package.path = ((arg and arg[0] or ""):match("^(.*)/[^/]*$") or ".") .. "/?.lua;" .. package.path
local O = require("seed_cli").options("regression_mlp", {"epochs"})
local N = O.quick and 2000 or 20640
local EPOCHS = O.epochs or (O.quick and 3 or 40)
local REPORT = O.quick and 1 or 5 -- print every REPORT epochs (and the last)

---------------------------------------------------------------------------
-- synthetic California-housing-shaped data (generating function above)

dl.manual_seed(0)
local f64 = {dtype = "float64"}
local function randn(std, mean) return dl.randn({N}, f64) * std + (mean or 0) end
local function unif(a, b) return dl.rand({N}, f64) * (b - a) + a end

local medinc = randn(0.45, math.log(3.5)):exp():clamp(0.5, 15)
local age = unif(1, 52)
local rooms = (medinc * 0.35 + 3.8 + randn(0.8)):clamp(1, 12)
local bedrms = (rooms * 0.03 + 0.9 + randn(0.08)):clamp(0.5, 3)
local pop = randn(0.7, 7):exp():clamp(3, 35000)
local occup = randn(0.7, 2.9):clamp(1, 10)
local lat = unif(32.5, 42)
local lon = (lat * -1 + 42) * 0.9 - 124.3 + randn(0.6)

local function bump(clat, clon, width)
  return (((lat - clat) ^ 2 + (lon - clon) ^ 2) / -width):exp()
end
local value = (medinc * 0.38 + 0.4 + age * 0.008
  + bump(34.05, -118.25, 0.8) * 1.3 + bump(37.77, -122.42, 0.5) * 1.5
  + (rooms - 5):tanh() * 0.25 - (occup / 3):log() * 0.35 - (pop / 1000):log() * 0.05
  + randn(0.35)):clamp(0.15, 5.0)

local X = dl.stack({medinc, age, rooms, bedrms, pop, occup, lat, lon}, 2):float()
local y = value:float():unsqueeze(2)

local n_train = math.floor(N * 0.8)
local perm = dl.randperm(N)
local itr, iva = perm:narrow(1, 1, n_train), perm:narrow(1, n_train + 1, N - n_train)
local Xtr, ytr = X:index_select(1, itr), y:index_select(1, itr)
local Xva, yva = X:index_select(1, iva), y:index_select(1, iva)

local scaler = dl.preprocessing.StandardScaler()
Xtr = scaler:fit_transform(Xtr)
Xva = scaler:transform(Xva)

---------------------------------------------------------------------------
-- model and training

local model = nn.Sequential(
  nn.Linear(8, 64), nn.ReLU(),
  nn.Linear(64, 64), nn.ReLU(),
  nn.Linear(64, 64), nn.ReLU(),
  nn.Linear(64, 1))
local loss_fn = nn.MSELoss()
local opt = optim.Adam(model:parameters(), {lr = 1e-3})
local sched = optim.lr_scheduler.StepLR(opt, {step_size = 10, gamma = 0.5})
local loader = dl.data.DataLoader(dl.data.TensorDataset(Xtr, ytr), {batch_size = 64, shuffle = true, seed = 1})

local function val_loss()
  model:eval()
  local l = dl.no_grad(function() return loss_fn(model(Xva), yva):item() end)
  model:train()
  return l
end

print(string.format("regression MLP 8-64-64-64-1 (ReLU), synthetic California-housing-shaped data: %d train, %d validation",
  n_train, N - n_train))
print(string.format("Adam lr 1e-3, StepLR(10, 0.5), batch 64, %d epochs; noise floor MSE %.4f", EPOCHS, 0.35 ^ 2))
print("")
print(string.format("%5s %12s %12s %10s", "epoch", "train loss", "val loss", "lr"))
local hist_train, hist_val = {}, {}
for epoch = 1, EPOCHS do
  local lr = opt.param_groups[1].lr
  local sum, count = 0, 0
  for xb, yb in loader:iter() do
    local loss = loss_fn(model(xb), yb)
    opt:zero_grad()
    loss:backward()
    opt:step()
    local b = xb:size(1)
    sum, count = sum + loss:item() * b, count + b
  end
  sched:step()
  hist_train[epoch], hist_val[epoch] = sum / count, val_loss()
  if epoch % REPORT == 0 or epoch == 1 or epoch == EPOCHS then
    print(string.format("%5d %12.4f %12.4f %10.2e", epoch, hist_train[epoch], hist_val[epoch], lr))
  end
end
print("")
print(string.format("final validation RMSE: %.4f (in $100k)", math.sqrt(hist_val[EPOCHS])))

if dl.plot and dl.plot.lines then
  local file = O.out .. "/regression_mlp_curves.png"
  dl.plot.lines({{name = "train loss", y = hist_train}, {name = "validation loss", y = hist_val}},
    {file = file, title = "regression MLP 8-64-64-64-1, synthetic housing", xlabel = "epoch",
     ylabel = "MSE", logy = true})
  print("plot: " .. file)
else
  print("note: dl.plot.lines is not available, no plot written")
end
print(string.format("wall time: %.1f s", dl._time() - t_start))
