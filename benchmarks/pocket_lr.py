import torch, numpy as np, time
torch.set_num_threads(1)
from gce.train import RunConfig, train_many
from gce import schedule
from gce.book import experiments as e
for ds, drop, chance in (("digits", 40, 0.1), ("digit_pairs", 80, 0.01)):
    for lr in (0.01, 0.03, 0.1):
        base = dict(e.table1_base(ds, "pocket"), lr=lr, milestones=(), epochs=drop)
        cfgs = [RunConfig(**base, noise="none", eta=0.0, method=m, seed=s, track_train_softmax=False)
                for m in ("cce", "mae", "lq") for s in range(2)]
        t = time.time(); res = train_many(cfgs)
        out = []
        for m in ("cce", "mae", "lq"):
            curves = np.mean([r.history["val_acc"] for r in res if r.config.method == m], axis=0)
            out.append(f"{m}: fit={schedule.has_fitted(curves, drop, chance=chance)} val={curves[-1]:.3f}")
        print(ds, lr, "; ".join(out), f"{time.time()-t:.0f}s", flush=True)
