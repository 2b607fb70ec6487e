"""Fan-out of committed events between control-plane processes (`--redis redis://...`).

The leader publishes what it committed (shared-state changes, topic
publications); every other control plane on the same Redis feeds them to the
watchers it serves. See _redis.py for the delivery rules, _topic_feed.py for
the live topic view.
"""

from ._redis import DEFAULT_CHANNEL_PREFIX as DEFAULT_CHANNEL_PREFIX
from ._redis import FanoutStats as FanoutStats
from ._redis import RedisFanout as RedisFanout
from ._topic_feed import TopicFeed as TopicFeed
from ._topic_feed import TopicWatcher as TopicWatcher

__all__ = ["DEFAULT_CHANNEL_PREFIX", "FanoutStats", "RedisFanout", "TopicFeed", "TopicWatcher"]
