"""The learned recommender: scikit-learn models fitted on finished task trees.

Features of a tree: TF-IDF of its root description (up to 512 terms, words
and word pairs), its task type (one-hot) and its plan shape: log(1 +
descendants), depth, and the number of components its description enumerates.
Targets: log(1 + total work seconds) and log(1 + wall seconds). A random
forest (100 trees, fixed random_state: the same history gives the same
answer) learns both.

For a new description:
- the most similar past trees (cosine similarity of TF-IDF, k = 5) say how
  such work was decomposed: the similarity-weighted median of their node
  counts is the recommended number of agents (one agent per node), their
  median descendants and depth the plan shape, and the agent types they ran,
  in their shares, the recommended types;
- the forest predicts work and wall time for the description with that plan
  shape: the duration range is the 10th-90th percentile of its trees'
  predictions of wall time, parallel efficiency is predicted work / wall
  (the speedup over one agent), and complexity (1..10) places the predicted
  work between the least and the most work of the past trees, on a log scale
  (1 = like the lightest, 10 = like the heaviest).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import RandomForestRegressor
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.neighbors import NearestNeighbors

from ._heuristics import MAX_AGENTS, components
from ._history import TreeSample

RANDOM_STATE = 0
TREES = 100
MAX_TERMS = 512
NEIGHBOURS = 5
TASK_TYPES = 7  # common_pb2.TaskType values 0..6

Matrix = npt.NDArray[np.float64]


def _shape(children: int, depth: int, parts: int) -> list[float]:
    return [math.log1p(children), float(depth), float(parts)]


def _one_hot(task_type: int) -> list[float]:
    row = [0.0] * TASK_TYPES
    row[task_type if 0 <= task_type < TASK_TYPES else 0] = 1.0
    return row


def _weighted_median(values: Sequence[float], weights: Sequence[float]) -> float:
    """The value where the cumulative weight first reaches half (the lower median on a tie)."""
    pairs = sorted(zip(values, weights, strict=True))
    total = sum(w for _, w in pairs)
    if total <= 0:
        return float(pairs[len(pairs) // 2][0])
    running = 0.0
    for value, weight in pairs:
        running += weight
        if running >= total / 2:
            return float(value)
    return float(pairs[-1][0])


def _allocate(shares: dict[str, float], agents: int) -> list[dict[str, Any]]:
    """`agents` split over the types by share (largest remainder), biggest first; every count >= 1."""
    ranked = sorted(shares.items(), key=lambda kv: (-kv[1], kv[0]))[:agents]
    total = sum(share for _, share in ranked) or 1.0
    exact = [(name, agents * share / total) for name, share in ranked]
    counts = {name: max(int(value), 1) for name, value in exact}
    left = agents - sum(counts.values())
    for name, _ in sorted(exact, key=lambda kv: -(kv[1] - int(kv[1]))):
        if left <= 0:
            break
        counts[name] += 1
        left -= 1
    while left < 0:  # the minimum of one each overshot: take from the largest
        biggest = max(counts, key=lambda n: counts[n])
        counts[biggest] -= 1
        left += 1
    return [{"type": name, "count": n} for name, n in sorted(counts.items(), key=lambda kv: -kv[1]) if n > 0]


class LearnedRecommender:
    """Fitted on a history of finished trees; `recommend` answers for one description."""

    def __init__(self, history: Sequence[TreeSample]) -> None:
        if not history:
            raise ValueError("a learned recommender needs at least one finished tree")
        self.history = list(history)
        self.vectorizer = TfidfVectorizer(
            stop_words="english", ngram_range=(1, 2), max_features=MAX_TERMS, sublinear_tf=True
        )
        texts = [s.description for s in self.history]
        try:
            self._text: Matrix = self.vectorizer.fit_transform(texts).toarray()
        except ValueError:  # no usable words anywhere (e.g. every description is a stop word)
            self.vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3), max_features=MAX_TERMS)
            self._text = self.vectorizer.fit_transform(texts).toarray()
        rows = [_one_hot(s.task_type) + _shape(s.children, s.depth, components(s.description)) for s in self.history]
        features = np.hstack([self._text, np.array(rows, dtype=np.float64)])
        targets = np.array([[math.log1p(s.work_seconds), math.log1p(s.wall_seconds)] for s in self.history])
        self.forest = RandomForestRegressor(n_estimators=TREES, random_state=RANDOM_STATE, n_jobs=1)
        self.forest.fit(features, targets)
        self.neighbours = NearestNeighbors(n_neighbors=min(NEIGHBOURS, len(self.history)), metric="cosine")
        self.neighbours.fit(self._text)
        self._works = sorted(s.work_seconds for s in self.history)

    def _complexity(self, work: float) -> float:
        """Where `work` falls between the history's least and most work, on a log scale: 1..10, to a half."""
        low, high = math.log1p(self._works[0]), math.log1p(self._works[-1])
        position = (math.log1p(work) - low) / (high - low) if high > low else 0.5
        return round((1 + 9 * min(max(position, 0.0), 1.0)) * 2) / 2

    def _similar(self, text: Matrix) -> list[tuple[TreeSample, float]]:
        distances, indexes = self.neighbours.kneighbors(text)
        return [(self.history[int(i)], max(1.0 - float(d), 0.0)) for d, i in zip(distances[0], indexes[0], strict=True)]

    def best_similarity(self, description: str) -> float:
        """How close the most similar past tree's description is (cosine of TF-IDF, 0..1)."""
        return max(similarity for _, similarity in self._similar(self.vectorizer.transform([description]).toarray()))

    def recommend(self, description: str, task_type: int = 0) -> dict[str, Any]:
        """The recommendation document's figures for `description` (see the module docstring)."""
        text: Matrix = self.vectorizer.transform([description]).toarray()
        similar = self._similar(text)
        weights = [similarity or 1e-6 for _, similarity in similar]  # no shared words: equal say
        agents = int(min(max(round(_weighted_median([s.nodes for s, _ in similar], weights)), 1), MAX_AGENTS))
        children = round(_weighted_median([s.children for s, _ in similar], weights))
        depth = round(_weighted_median([s.depth for s, _ in similar], weights))
        row = np.array([_one_hot(task_type) + _shape(children, depth, components(description))], dtype=np.float64)
        features = np.hstack([text, row])
        per_tree = np.stack([tree.predict(features)[0] for tree in self.forest.estimators_])  # trees x 2
        work, wall = (float(v) for v in np.expm1(per_tree.mean(axis=0)))
        spread = np.expm1(per_tree[:, 1])
        shares: dict[str, float] = {}
        for (sample, _), weight in zip(similar, weights, strict=True):
            nodes = sum(sample.agent_types.values()) or 1
            for name, count in sample.agent_types.items():
                shares[name] = shares.get(name, 0.0) + weight * count / nodes
        return {
            "complexity": self._complexity(work),
            "recommended_agents": agents,
            "agent_types": _allocate(shares, agents),
            "plan_shape": {"descendants": children, "depth": depth},
            "estimated_duration_seconds": {
                "low": round(float(np.percentile(spread, 10)), 3),
                "high": round(float(np.percentile(spread, 90)), 3),
            },
            "parallel_efficiency": round(work / wall, 2) if wall > 0 else 1.0,
            "predicted": {"work_seconds": round(work, 3), "wall_seconds": round(wall, 3)},
            "similar_trees": [
                {
                    "root_id": sample.root_id,
                    "description": sample.description,
                    "similarity": round(similarity, 3),
                    "nodes": sample.nodes,
                    "wall_seconds": round(sample.wall_seconds, 3),
                }
                for sample, similarity in similar
            ],
        }
