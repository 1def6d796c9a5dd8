"""Genetic channel search (after Hu et al. 2018).

A pre-trained network is pruned group by group, in topological order. Each
group's keep count comes from its sensitivity (`allocate`); which channels
to keep is a combinatorial problem solved with a genetic algorithm (pygad).
A chromosome is the kept subset itself (exactly k distinct indices), kept
fixed-size by tfprune's crossover and mutation operators.

Fitness has two steps, to keep each evaluation cheap:

1. For every candidate: on activations sampled once from calibration data,
   the least-squares reconstruction error of the next channel-mixing layers'
   outputs from the kept input channels, with those layers' weights re-fitted
   (normalised by the output energy, summed over the group's consumers). A
   Gram matrix computed once per consumer makes each candidate one small
   linear solve.
2. For the best `real_loss_top` candidates of a generation: the network's
   real loss on a small batch, with the candidate applied (and the groups
   already searched). These candidates rank above all others, ordered by that
   loss, so elitism keeps the best of them.

tfprune's choices: the search starts from a population seeded with the
L1-norm subset; selection is steady-state, crossover keeps the parents'
common channels and fills up from their union, mutation swaps kept for
removed channels; re-fitted consumer weights are handed to `rebuild` through
`plan.refits`. Consumers that are not Conv/Dense (e.g. separable or
transposed convolutions) are zeroed rather than re-fitted, and a group with
none of those consumers keeps its L1 subset.
"""

import time

import keras
import numpy as np

from tfprune.core.budget import Budget, check_budget
from tfprune.core.data import as_arrays, evaluate
from tfprune.core.graph import ChannelGraph, analyze
from tfprune.core.plan import PruningPlan
from tfprune.core.rebuild import zero_out
from tfprune.methods.registry import Method, Option, register_method
from tfprune.methods.search.sensitivity import ConsumerWeights, allocate, sensitivity
from tfprune.ranking.importance import magnitude, top_channels


def _refittable(node):
    """Whether the layer's spec says its kernel can be re-fitted (Conv, Dense)."""
    return node.spec is not None and node.spec.refit is not None and (
        int(node.config.get(node.spec.groups_key, 1) or 1) == 1
        if node.spec.groups_key else True)


def _pad_amounts(size, kernel, stride, dilation, padding):
    """(before, output size) of one spatial axis, as Keras computes them."""
    span = (kernel - 1) * dilation + 1
    if padding == "same":
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        return total // 2, out
    return 0, (size - span) // stride + 1


class _Consumer:
    """Sampled design matrix of one Conv/Dense consumer of a group.

    Rows are sampled output positions, columns the layer's flattened inputs
    (for a conv: the k x k x C patch), so its linear output is `A @ W`.
    """

    def __init__(self, node, layer, x, channels, positions, rng):
        cfg = node.config
        kernel = keras.ops.convert_to_numpy(layer.kernel)
        self.node, self.kernel_shape = node, kernel.shape
        self.w = kernel.reshape(-1, kernel.shape[-1]).astype(np.float64)
        if node.spec.refit == "dense":
            flat = x.reshape(-1, x.shape[-1])
            rows = rng.choice(len(flat), min(positions, len(flat)), replace=False)
            a = flat[rows]
            self.col_channels = channels
        else:
            a = self._patches(x, cfg, kernel.shape, positions, rng)
            self.col_channels = np.tile(channels, int(np.prod(kernel.shape[:-2])))
        a = a.astype(np.float64)
        y = a @ self.w
        self.gram = a.T @ a
        self.aty = a.T @ y
        self.energy = float((y * y).sum()) + 1e-12

    @staticmethod
    def _patches(x, cfg, kshape, positions, rng):
        ks = kshape[:-2]
        strides = cfg.get("strides") or (1,) * len(ks)
        dil = cfg.get("dilation_rate") or (1,) * len(ks)
        spans = [(k - 1) * d + 1 for k, d in zip(ks, dil)]
        pads, outs = zip(*[_pad_amounts(s, k, st, d, cfg.get("padding", "valid"))
                           for s, k, st, d in zip(x.shape[1:-1], ks, strides, dil)])
        padded = np.pad(x, [(0, 0)] + [(p, p + span) for p, span in zip(pads, spans)]
                        + [(0, 0)])
        n = rng.integers(0, x.shape[0], positions)
        starts = [rng.integers(0, o, positions) * st for o, st in zip(outs, strides)]
        grid = np.meshgrid(*[np.arange(k) * d for k, d in zip(ks, dil)], indexing="ij")
        offsets = np.stack(grid, -1).reshape(-1, len(ks))
        # kernel positions in row-major order, channels fastest: kernel.reshape(-1, F)
        rows = [padded[(n,) + tuple(s + o for s, o in zip(starts, off))] for off in offsets]
        return np.concatenate(rows, axis=1)

    def error(self, kept_channels):
        """Normalised residual and re-fitted kernel rows for a kept subset."""
        cols = np.isin(self.col_channels, kept_channels)
        g = self.gram[np.ix_(cols, cols)]
        b = self.aty[cols]
        ridge = 1e-6 * (np.trace(g) / max(len(g), 1) + 1e-12)
        w = np.linalg.solve(g + ridge * np.eye(len(g)), b)
        residual = self.energy - float(np.sum(b * w))
        return max(residual, 0.0) / self.energy, w, cols

    def refit_kernel(self, w, cols):
        """The kernel restricted to kept inputs, re-fitted, in Keras layout."""
        shape = self.kernel_shape
        kept_in = int(cols.sum() // max(1, np.prod(shape[:-2])))
        return w.reshape(shape[:-2] + (kept_in, shape[-1])).astype(np.float32)


def _fixed_size_crossover(parents, offspring_size, ga):
    rng = ga.tfprune_rng
    k = offspring_size[1]
    children = []
    for i in range(offspring_size[0]):
        a, b = parents[i % len(parents)], parents[(i + 1) % len(parents)]
        common = np.intersect1d(a, b)
        rest = np.setdiff1d(np.union1d(a, b), common)
        fill = rng.choice(rest, k - len(common), replace=False) if k > len(common) else []
        children.append(np.sort(np.concatenate([common, fill]).astype(int)))
    return np.array(children)


def _fixed_size_mutation(offspring, ga):
    rng = ga.tfprune_rng
    size = ga.tfprune_group_size
    for child in offspring:
        if rng.random() < ga.tfprune_mutation_rate:
            out = np.setdiff1d(np.arange(size), child)
            if len(out):
                child[rng.integers(len(child))] = rng.choice(out)
            child.sort()
    return offspring


class GeneticChannelSearch:
    """Sensitivity-guided, group-by-group channel selection with pygad.

    Args:
        model: a pre-trained `keras.Model` (not modified).
        calib_data: (x, y) arrays or a batched dataset: activations for the
            reconstruction fitness and the batch for the real-loss fitness.
        budget: a `tfprune.Budget` (MACs, params and/or latency; its
            `round_to` sets the kept widths' granularity).
        sensitivity: a `Sensitivity`; computed on `calib_data` if None.
        population: chromosomes per generation.
        generations: generations per group.
        seed: makes the search reproducible (same seed, same plan).
        fitness: "two_step" (default) or "real_loss" (every candidate
            evaluated by the real loss; slow, for comparison).
        real_loss_top: candidates per generation given the real-loss step.
        positions: sampled output positions per consumer for step 1.
        batch_size: samples in the real-loss batch.
        from_logits: whether the model outputs logits.
        verbose: print a progress bar per group.

    Attributes:
        history: dict group id -> best fitness per generation.
        counts: dict group id -> kept width, from the allocation.
        fitness_calls: number of step-1 and real-loss evaluations.
        working_model: after `run`, a model of the original size with the
            removed channels zeroed and the consumers re-fitted: it computes
            what `rebuild(model, plan)` computes.
        search_seconds: wall time of the search itself.
        reconstruction_errors: dict group id -> step-1 fitness of the chosen
            subset (summed normalised least-squares residual of the group's
            consumers), to compare selections.

    Example:

    ```python
    search = tfprune.methods.search.GeneticChannelSearch(
        model, (x, y), tfprune.Budget(macs=0.5), generations=2, verbose=False)
    plan = search.run()
    slim = tfprune.rebuild(model, plan)
    ```
    """

    def __init__(self, model, calib_data, budget, sensitivity=None, population=32,
                 generations=30, seed=0, fitness="two_step", real_loss_top=2,
                 positions=1024, batch_size=256, from_logits=True, verbose=True):
        check_budget(budget)
        for name, value in (("population", population), ("generations", generations)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}.")
        if generations < 1:
            raise ValueError(f"generations must be at least 1, got {generations}.")
        if fitness not in ("two_step", "real_loss"):
            raise ValueError(f"fitness must be 'two_step' or 'real_loss', got {fitness!r}.")
        if population < 4:
            raise ValueError(f"population must be at least 4, got {population}.")
        self.graph = model if isinstance(model, ChannelGraph) else analyze(model)
        self.model = self.graph.model
        self.x, self.y = as_arrays(calib_data)
        self.budget = budget
        if budget.table is not None:
            budget.table.check(self.graph)
        self.sensitivity = sensitivity
        self.population, self.generations = int(population), int(generations)
        self.seed, self.fitness = seed, fitness
        self.real_loss_top, self.positions = real_loss_top, positions
        self.batch_size, self.from_logits, self.verbose = batch_size, from_logits, verbose
        self.history, self.counts = {}, {}
        self.fitness_calls = {"reconstruction": 0, "real_loss": 0}

    def _activations(self, keys):
        model = self.model
        tensors = []
        for key in keys:
            name, node_index, tensor_index = key.rsplit(":", 2)
            layer = model.get_layer(name)
            out = layer.output if int(node_index) == 0 else None
            tensors.append(out[int(tensor_index)] if isinstance(out, (list, tuple)) else out)
        probe = keras.Model(model.inputs, tensors)
        n = min(len(self.x), 512)
        outs = probe.predict(self.x[:n], batch_size=128, verbose=0)
        outs = outs if isinstance(outs, list) else [outs]
        return dict(zip(keys, outs))

    def run(self):
        """Searches every group; returns the `PruningPlan` (with refits)."""
        return self._run(None)

    def refit(self, keep):
        """A plan keeping the given subsets, consumers re-fitted as in `run`.

        Args:
            keep: dict group id -> kept indices (e.g. an L1 or random choice
                of the same widths), to compare selections on equal terms.
        """
        return self._run({gid: np.sort(np.asarray(k, dtype=int)) for gid, k in keep.items()})

    def _run(self, choices):
        graph, rng = self.graph, np.random.default_rng(self.seed)
        keras.utils.set_random_seed(self.seed)
        if choices is not None:
            self.counts = {gid: len(k) for gid, k in choices.items()}
        else:
            if self.sensitivity is None:
                self.sensitivity = sensitivity(graph, (self.x, self.y))
            self.counts = allocate(graph, self.sensitivity, self.budget)
        scores = magnitude(graph)
        working = zero_out(self.model, graph.plan())
        editor = ConsumerWeights(graph, working)
        batch = (self.x[:self.batch_size], self.y[:self.batch_size])
        searched = [g for g in graph.prunable_groups
                    if self.counts.get(g.id, g.size) < g.size]
        consumers = {g.id: [n for n in editor.consumers(g) if _refittable(n)
                            and len(np.unique(graph.group_ids(
                                graph.channels[n.inputs[0]]))) == 1]
                     for g in searched}
        keys = sorted({n.inputs[0] for ns in consumers.values() for n in ns})
        acts = self._activations(keys) if keys else {}
        keep, refits = {}, {}
        self.reconstruction_errors = {}
        start = time.perf_counter()
        for group in searched:
            k = self.counts[group.id]
            l1 = top_channels(scores[group.id], k)
            # Positions drawn per group, apart from the GA's draws: run() and
            # refit() then score subsets on the very same samples.
            sampler = np.random.default_rng([self.seed, group.id])
            models = [_Consumer(n, self.model.get_layer(n.path[0]), acts[n.inputs[0]],
                                graph.channels[n.inputs[0]], self.positions, sampler)
                      for n in consumers[group.id]]
            if choices is not None:
                chosen = choices[group.id]
            elif not models or len(group.segments):
                chosen = l1
            else:
                chosen = self._search_group(group, k, l1, models, editor, batch, rng)
            keep[group.id] = chosen
            kept_channels = chosen + group.offset
            # Apply the choice to the working copy, so later groups see it.
            editor.zero(group, chosen)
            self.reconstruction_errors[group.id] = 0.0
            for m in models:
                err, w, cols = m.error(kept_channels)
                self.reconstruction_errors[group.id] += err
                kernel = m.refit_kernel(w, cols)
                refits[m.node.name] = {"kernel": kernel}
                self._set_refit(editor, m, kernel, cols)
        if choices is None:  # refit() scores given subsets; it is no search
            self.search_seconds = time.perf_counter() - start
        self.working_model = working  # the original size, computing what the plan does
        round_to = self.budget.round_to
        step = None if isinstance(round_to, str) or round_to <= 1 else round_to
        plan = PruningPlan(graph, keep, round_to=step)
        plan.refits = refits
        return plan

    @staticmethod
    def _set_refit(editor, consumer, kernel, cols):
        var = editor.kernel(consumer.node)
        value = keras.ops.convert_to_numpy(var).copy()
        flat = value.reshape(-1, value.shape[-1])
        flat[:] = 0
        flat[cols] = kernel.reshape(-1, kernel.shape[-1])
        var.assign(flat.reshape(value.shape))

    def _search_group(self, group, k, l1, models, editor, batch, rng):
        import pygad

        cache = {}

        def reconstruction(solution):
            key = tuple(sorted(int(i) for i in solution))
            if key not in cache:
                self.fitness_calls["reconstruction"] += 1
                cache[key] = sum(m.error(np.array(key) + group.offset)[0] for m in models)
            return cache[key]

        real_cache = {}

        def real_loss(solution):
            key = tuple(sorted(int(i) for i in solution))
            if key not in real_cache:
                self.fitness_calls["real_loss"] += 1
                chans = np.array(key) + group.offset
                saved = editor.zero(group, np.array(key))
                for m in models:
                    _, w, cols = m.error(chans)
                    self._set_refit(editor, m, m.refit_kernel(w, cols), cols)
                real_cache[key] = evaluate(editor.working, *batch, self.from_logits)[1]
                editor.restore(saved)
            return real_cache[key]

        def fitness(ga, solutions, indices):
            if self.fitness == "real_loss":
                return [-real_loss(s) for s in solutions]
            errors = np.array([reconstruction(s) for s in solutions])
            values = list(-errors)
            for i in np.argsort(errors)[:self.real_loss_top]:
                values[i] = 10.0 + 1.0 / (1.0 + real_loss(solutions[i]))
            return values

        initial = [l1] + [np.sort(rng.choice(group.size, k, replace=False))
                          for _ in range(self.population - 1)]
        best_per_generation = []
        progress = keras.utils.Progbar(self.generations, verbose=1 if self.verbose else 0,
                                       unit_name="generation")
        print_name = group.producers[0]
        if self.verbose:
            print(f"group {group.id} ({print_name}): keep {k} of {group.size}")

        def on_generation(ga):
            best = float(np.max(ga.last_generation_fitness))
            best_per_generation.append(best)
            progress.update(len(best_per_generation), [("best_fitness", best)])

        ga = pygad.GA(
            num_generations=self.generations, num_parents_mating=max(2, self.population // 2),
            fitness_func=fitness, fitness_batch_size=self.population,
            initial_population=np.array(initial), gene_type=int,
            parent_selection_type="sss", keep_elitism=2,
            crossover_type=_fixed_size_crossover, mutation_type=_fixed_size_mutation,
            on_generation=on_generation, random_seed=self.seed + group.id,
            suppress_warnings=True)
        ga.tfprune_rng = np.random.default_rng(self.seed * 7919 + group.id)
        ga.tfprune_group_size = group.size
        ga.tfprune_mutation_rate = 0.5
        ga.run()
        self.history[group.id] = best_per_generation
        solution, _, _ = ga.best_solution(ga.last_generation_fitness)
        return np.sort(np.asarray(solution, dtype=int))


def reconstruct(model, plan, data, positions=1024, seed=0):
    """`plan` with its consumers re-fitted to the kept channels by least squares.

    Removing channels leaves the next layers reading less than they were
    trained on. For every Conv/Dense layer that reads a pruned group, this
    re-fits its kernel so that, on calibration activations, it computes from
    the kept channels what it computed from all of them (as the genetic
    search does for its own choices; groups are visited in topological order,
    each seeing the earlier groups already pruned and re-fitted). The
    channels kept do not change; `rebuild` uses the re-fitted kernels. Only
    forward passes and small linear solves: no training.

    Args:
        model: the trained `keras.Model` (or its `ChannelGraph`) the plan is
            for; not modified.
        plan: a `PruningPlan` of `model`.
        data: calibration data: `(x, y)` arrays or a batched dataset (512
            samples are used).
        positions: output positions sampled per consumer for the fit.
        seed: seeds the sampled positions.

    Returns:
        A new `PruningPlan` keeping the same channels, with `refits`.

    Example:

    ```python
    plan = tfprune.prune(model, tfprune.Budget(macs=0.5))
    plan = tfprune.methods.search.reconstruct(model, plan, (x, y))
    slim = tfprune.rebuild(model, plan)   # computes close to what `model` does
    ```
    """
    if isinstance(model, ChannelGraph):
        graph = model
    else:
        graph = plan.graph if plan.graph.model is model else analyze(model)
    if graph.model is not plan.graph.model:
        raise ValueError("the plan was made for another model; give reconstruct() "
                         "the model the plan was made for.")
    if getattr(plan, "kernels", None):
        raise ValueError("reconstruct() re-fits channel plans; this plan also shrinks "
                         "kernels (SMOF), whose consumers it cannot re-fit.")
    # The target is never used: refit() keeps the plan's own subsets.
    search = GeneticChannelSearch(graph, data, Budget(macs=1.0), positions=positions,
                                  seed=seed, verbose=False)
    keep = {g.id: plan.keep[g.id] for g in graph.prunable_groups
            if len(plan.keep[g.id]) < g.size}
    return search.refit(keep)


def plan(model, budget, data, *, generations=30, population=32, sensitivity=None,
         seed=0, verbose=True, **search_options):
    """The genetic search's `PruningPlan` for `model` within `budget`.

    `GeneticChannelSearch(model, data, budget, ...).run()`.

    Args:
        model: a trained `keras.Model` (not modified).
        budget: a `tfprune.Budget`.
        data: calibration data: `(x, y)` arrays or a batched dataset.
        generations, population, sensitivity, seed, verbose, **search_options:
            as for `GeneticChannelSearch`.

    Example:

    ```python
    plan = tfprune.methods.search.plan(model, tfprune.Budget(macs=0.5), (x, y),
                                       generations=2, verbose=False)
    ```
    """
    return GeneticChannelSearch(model, data, budget, sensitivity=sensitivity,
                                population=population, generations=generations,
                                seed=seed, verbose=verbose, **search_options).run()


register_method("ga", Method(
    plan=lambda model, budget, data=None, generations=30, population=32, seed=0: plan(
        model, budget, data, generations=generations, population=population, seed=seed),
    summary="sensitivity-guided widths, channel subsets by a genetic algorithm, "
            "consumers re-fitted",
    paper="Hu et al. 2018, A novel channel pruning method for deep neural network "
          "compression",
    needs_data=True, latency=True, refits=True,
    options=[Option("generations", int, 30, "generations per group"),
             Option("population", int, 32, "chromosomes per generation"),
             Option("seed", int, 0, "seeds the search (same seed, same plan)")]))
