-- seed_data.lua — the Fashion-MNIST subsets the regularization and scheduler
-- experiments share: one fixed permutation (drawn from the current seed)
-- picks n_train training and n_val validation images; pixels are z-scored
-- with the training subset's statistics. quick takes all three subsets from
-- the 10,000-image test file (decoding the 60,000-image training file alone
-- takes seconds); otherwise the test set is the test file.
local dl = require "dlua"

local M = {}

local function load_split(split)
  local X, y = dl.datasets.fashion_mnist({split = split})
  return X:reshape(X:size(1), -1):float(), y:long()
end

-- returns Xtr, ytr, Xva, yva, Xte, yte
function M.fashion_subsets(quick, n_train, n_val, n_test)
  local Xall, yall = load_split(quick and "test" or "train")
  local perm = dl.randperm(Xall:size(1))
  local itr, iva = perm:narrow(1, 1, n_train), perm:narrow(1, n_train + 1, n_val)
  local Xtr, ytr = Xall:index_select(1, itr), yall:index_select(1, itr)
  local Xva, yva = Xall:index_select(1, iva), yall:index_select(1, iva)
  local Xte, yte
  if quick then
    local ite = perm:narrow(1, n_train + n_val + 1, n_test)
    Xte, yte = Xall:index_select(1, ite), yall:index_select(1, ite)
  else
    Xte, yte = load_split("test")
  end
  local scaler = dl.preprocessing.StandardScaler()
  Xtr = scaler:fit_transform(Xtr)
  Xva, Xte = scaler:transform(Xva), scaler:transform(Xte)
  return Xtr, ytr, Xva, yva, Xte, yte
end

return M
