"""Every container of every overlay runs an image of that overlay's registry, and the
solana-source ContainerSource is wired to the Broker."""
import pytest

from deploy_helpers import OVERLAYS

REGISTRY = {"dev": "localhost:5000/", "prod": "registry.example.com/"}


def images(doc: dict) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if isinstance(node.get("image"), str) and "containers" not in node:
                found.append(node["image"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(doc)
    return found


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_kades_image_comes_from_the_overlay_registry(rendered, overlay):
    ours = [image for doc in rendered[overlay] for image in images(doc) if "kades/" in image]
    assert ours, "the functions run KADES images"
    assert [i for i in ours if not i.startswith(REGISTRY[overlay])] == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_solana_source_sends_to_the_broker(rendered, overlay):
    [source] = [d for d in rendered[overlay] if d["kind"] == "ContainerSource"]
    assert source["spec"]["sink"]["ref"] == {"apiVersion": "eventing.knative.dev/v1",
                                             "kind": "Broker", "name": "kades"}
    [container] = source["spec"]["template"]["spec"]["containers"]
    assert container["command"][:2] == ["kades", "solana-source"]
    configmap = next(d for d in rendered[overlay] if d["kind"] == "ConfigMap"
                     and d["metadata"]["name"].startswith("kades-config"))
    assert "SOLANA_RPC_URL" in configmap["data"]
