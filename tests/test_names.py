"""The name grammar at import: control characters, over-long and non-string names are refused
with one error naming the file; names must stay unique after NIR subgraphs are inlined."""

import nir
import numpy as np
import pytest
import snntorch as snn
import torch

import snn_compile
from snn_compile.errors import GraphError, ModelFileError
from snn_compile.importers import load_model
from snn_compile.importers.model_file import graph_to_dict
from snn_compile.importers.snntorch import from_snntorch
from snn_compile.names import MAX_LENGTH, name_problem


def _net():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 3), snn.Leaky(beta=0.9, init_hidden=True))


def _model_file(tmp_path, name):
    data = graph_to_dict(from_snntorch(_net(), (4,)))
    old = data["nodes"][2]["name"]
    data["nodes"][2]["name"] = name
    data["edges"] = [[name if e == old else e for e in edge] for edge in data["edges"]]
    path = tmp_path / "m.pt"
    torch.save(data, path)
    return path


@pytest.mark.parametrize("name", ["a\nb", "\x1b[2J", "nul\0", "\u202eabc", "", "x" * 300,
                                  "tab\t"])
def test_control_characters_and_long_names_are_refused(tmp_path, name):
    path = _model_file(tmp_path, name)
    with pytest.raises(ModelFileError) as info:
        load_model(path)
    text = str(info.value)
    assert "m.pt" in text and "invalid node name" in text and "\n" not in text
    assert "\x1b" not in text and "\0" not in text


@pytest.mark.parametrize("name", ["a/b", "x\"\"\" + os.system('id') + \"\"\"", "$(id)",
                                  "`id`", "{}[];", "ünï 層", "x" * MAX_LENGTH])
def test_printable_names_are_kept_exactly(tmp_path, name):
    assert name_problem(name) is None
    graph = load_model(_model_file(tmp_path, name))
    assert name in graph.by_name


def test_snntorch_module_names_follow_the_grammar():
    net = torch.nn.Sequential()
    net.add_module("fc\n1", torch.nn.Linear(4, 3))
    net.add_module("lif", snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(ModelFileError, match="invalid node name"):
        snn_compile.importers.snntorch.from_snntorch(net, (4,))


def test_nir_subgraph_names_cannot_merge(tmp_path):
    lif = dict(tau=np.full(2, 1e-3), r=np.full(2, 10.0), v_leak=np.zeros(2),
               v_threshold=np.ones(2))
    sub = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])), "fc": nir.Linear(np.eye(2)),
                              "output": nir.Output(np.array([2]))},
                       edges=[("input", "fc"), ("fc", "output")])
    graph = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])), "s": sub,
                                "s.fc": nir.LIF(**lif), "output": nir.Output(np.array([2]))},
                         edges=[("input", "s"), ("s", "s.fc"), ("s.fc", "output")],
                         type_check=False)
    path = tmp_path / "g.nir"
    nir.write(path, graph)
    with pytest.raises(GraphError, match="'s.fc'.*same name"):
        load_model(path, nir_convention="snntorch")
