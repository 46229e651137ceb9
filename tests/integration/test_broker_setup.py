"""make test's broker check, on a RabbitMQ node of its own that has only the default
plugins (the machine's broker already has them and is never reconfigured by a test)."""
import pytest

from tests.broker_setup import BrokerNotReady, ensure_plugins, missing_plugins, running_plugins
from tests.brokernode import NEEDED_PLUGINS, RabbitNode

pytestmark = pytest.mark.slow


@pytest.fixture
def bare_broker(tmp_path):
    node = RabbitNode(tmp_path / "bare", plugins=())
    node.start()
    yield node
    node.stop()


def test_missing_plugins_stop_the_run_in_one_line_or_are_enabled(bare_broker):
    uri, api = bare_broker.amqp_uri(), bare_broker.api_url
    assert missing_plugins(uri, api) == list(NEEDED_PLUGINS)  # no management API at all

    with pytest.raises(BrokerNotReady) as e:
        ensure_plugins(uri, api, enable=None)
    line = str(e.value)
    assert "\n" not in line
    assert "rabbitmq-plugins enable rabbitmq_management rabbitmq_federation " \
           "rabbitmq_federation_management" in line

    enabled = []

    def enable(plugins):
        enabled.extend(plugins)
        bare_broker.plugins_cmd("enable", *plugins)
    assert ensure_plugins(uri, api, enable) == list(NEEDED_PLUGINS)
    assert set(NEEDED_PLUGINS) <= running_plugins(api)
    assert ensure_plugins(uri, api, enable) == [] and enabled == list(NEEDED_PLUGINS)  # only once


def test_a_broker_that_does_not_answer_is_one_line():
    with pytest.raises(BrokerNotReady) as e:
        missing_plugins("amqp://guest:guest@127.0.0.1:1/", "http://127.0.0.1:1")
    assert "not answering at 127.0.0.1:1" in str(e.value) and "\n" not in str(e.value)
