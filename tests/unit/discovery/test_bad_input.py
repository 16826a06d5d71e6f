"""Bad input: a clear error naming source, line and expectation, or a noted best effort.

Never a crash, never a silently wrong topology.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from stratum.discovery import ParseError, discover_dir
from stratum.discovery.recognise import parse_text
from stratum.discovery.sources import Text, strip_provenance

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "hardware"
A100_TOPO = FIXTURES / "topo-hgx-a100-8gpu-roce-8nic.txt"


def lines_of(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def write(tmp_path: Path, text: str, name: str = "out.txt") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def parse_error(tmp_path: Path, text: str) -> ParseError:
    with pytest.raises(ParseError) as caught:
        discover_dir(write(tmp_path, text))
    return caught.value


def row_index(lines: list[str], device: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(device + " "))


# ---- nvidia-smi topo -m -----------------------------------------------------------------


def test_truncated_matrix_names_missing_rows(tmp_path: Path) -> None:
    lines = lines_of(A100_TOPO)
    cut = row_index(lines, "NIC5")
    err = parse_error(tmp_path, "\n".join(lines[:cut]))
    assert "missing NIC5, NIC6, NIC7" in str(err) and "truncated" in str(err)
    assert err.source.endswith("out.txt") and err.line == cut + 1


def test_row_cut_in_the_middle(tmp_path: Path) -> None:
    lines = lines_of(A100_TOPO)
    at = row_index(lines, "NIC7")
    lines[at] = lines[at][:40]
    err = parse_error(tmp_path, "\n".join(lines[: at + 1]))
    assert err.line == at + 1
    assert "16 link classes in row NIC7" in err.expected and "square" in err.expected


def test_reordered_rows_give_the_same_topology(tmp_path: Path) -> None:
    lines = lines_of(A100_TOPO)
    first, last = row_index(lines, "GPU0"), row_index(lines, "NIC7")
    rows = lines[first : last + 1]
    random.Random(7).shuffle(rows)
    shuffled = lines[:first] + rows + lines[last + 1 :]
    original = discover_dir(A100_TOPO, name="x").profile.spec
    again = discover_dir(write(tmp_path, "\n".join(shuffled)), name="x").profile.spec
    assert again.model_dump(exclude={"description"}) == original.model_dump(exclude={"description"})


def test_non_square_matrix(tmp_path: Path) -> None:
    text = (
        "\tGPU0\tGPU1\tGPU2\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNV2\t0-7\t0\n"
        "GPU1\tNV2\t X \t0-7\t0\nGPU2\tSYS\tSYS\t0-7\t0\n"
    )
    err = parse_error(tmp_path, text)
    assert "3 link classes in row GPU0" in str(err) and err.line == 2
    missing_row = "\n".join(text.split("\n")[:3])
    assert "missing GPU2" in str(parse_error(tmp_path, missing_row))


def test_asymmetric_matrix(tmp_path: Path) -> None:
    text = (
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNV4\t0-7\t0\n"
        "GPU1\tNV2\t X \t0-7\t0\n"
    )
    err = parse_error(tmp_path, text)
    assert "same class both ways" in str(err) and err.line == 3


def test_unknown_link_class(tmp_path: Path) -> None:
    text = (
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tQPI\t0-7\t0\n"
        "GPU1\tQPI\t X \t0-7\t0\n"
    )
    err = parse_error(tmp_path, text)
    assert "link class" in err.expected and err.found == "QPI" and err.line == 2


def test_x_off_the_diagonal(tmp_path: Path) -> None:
    text = "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tX\t0-7\t0\nGPU1\tX\t X \t0-7\t0\n"
    assert "diagonal" in str(parse_error(tmp_path, text))


def test_bad_cpu_affinity(tmp_path: Path) -> None:
    text = "\tGPU0\tCPU Affinity\tNUMA Affinity\nGPU0\t X \t0-7x\t0\n"
    err = parse_error(tmp_path, text)
    assert "CPU list" in err.expected and err.found == "0-7x"


# ---- locale, unknown models, missing columns ------------------------------------------

GERMAN_LSCPU = """Architektur:                    x86_64
  CPU Operationsmodus:           32-bit, 64-bit
CPU(s):                          8
Liste der Online-CPU(s):         0-7
Thread(s) pro Kern:              2
Kern(e) pro Sockel:              4
Sockel:                          1
NUMA-Knoten:                     1
"""


def test_foreign_locale_lscpu_is_refused_with_advice(tmp_path: Path) -> None:
    err = parse_error(tmp_path, GERMAN_LSCPU)
    assert "LC_ALL=C" in str(err) and err.line == 1 and "Architektur" in (err.found or "")


def test_lscpu_parsable_is_the_same_in_every_language(tmp_path: Path) -> None:
    text = "# CPU,Core,Socket,Node\n" + "".join(
        f"{c},{c % 4},{c // 8},{c // 8}\n" for c in range(16)
    )
    spec = discover_dir(write(tmp_path, text)).profile.spec
    assert [(s.cores, s.threads_per_core) for s in spec.sockets] == [(4, 2), (4, 2)]
    assert [n.cpus for s in spec.sockets for n in s.numa_nodes] == ["0-7", "8-15"]


def test_unknown_gpu_model_is_reported_as_seen_with_a_note(tmp_path: Path) -> None:
    text = "GPU 0: NVIDIA Zeta 9000 (UUID: GPU-00000000-0000-0000-0000-00000000000a)\n"
    result = discover_dir(write(tmp_path, text))
    gpu = result.profile.spec.gpus[0]
    assert (gpu.model, gpu.family, gpu.memory_gib, gpu.mig_profiles) == ("ZETA-9000", None, 0.0, [])
    messages = " ".join(n.message for n in result.notes)
    assert "not a GPU model Stratum knows" in messages and "memory unknown" in messages


def test_csv_without_header_is_refused(tmp_path: Path) -> None:
    text = "name, uuid, memory.total [MiB]\n"  # a header with no rows
    err = parse_error(tmp_path, text)
    assert "one CSV row per GPU" in err.expected


def test_csv_noheader_is_not_guessed(tmp_path: Path) -> None:
    text = "NVIDIA A100-SXM4-80GB, GPU-1, 81920 MiB\n"
    result = discover_dir(write(tmp_path, text))
    assert result.profile.spec.gpus == []  # not recognised: its columns have no names
    assert any("no known command output" in n.message for n in result.notes)


def test_csv_row_with_missing_values(tmp_path: Path) -> None:
    text = "name, uuid, memory.total [MiB]\nNVIDIA L4, GPU-1\n"
    err = parse_error(tmp_path, text)
    assert err.line == 2 and "3 values" in err.expected


def test_csv_missing_name_column_is_noted(tmp_path: Path) -> None:
    text = "index, uuid, memory.total [MiB]\n0, GPU-1, 23034 MiB\n"
    result = discover_dir(write(tmp_path, text))
    assert result.profile.spec.gpus[0].model == "unknown"
    assert any("no 'name' column" in n.message for n in result.notes)


# ---- nvidia-smi -q / -q -x ---------------------------------------------------------------


def test_query_text_section_without_product_name(tmp_path: Path) -> None:
    text = (
        "==============NVSMI LOG==============\n\nAttached GPUs : 1\nGPU 00000000:01:00.0\n"
        "    Product Brand : NVIDIA\n"
    )
    err = parse_error(tmp_path, text)
    assert "Product Name" in err.expected and err.line == 4


def test_query_text_more_sections_than_attached(tmp_path: Path) -> None:
    gpu = "GPU 00000000:0{}:00.0\n    Product Name : NVIDIA L4\n"
    text = (
        "==============NVSMI LOG==============\nAttached GPUs : 1\n" + gpu.format(1) + gpu.format(2)
    )
    assert "at most 1 GPU sections" in str(parse_error(tmp_path, text))


def test_truncated_xml(tmp_path: Path) -> None:
    xml = (FIXTURES / "nvidia-smi-q-x-a100-sxm4-40gb-mig-enabled.xml").read_text()
    err = parse_error(tmp_path, xml[: len(xml) // 2])
    assert "well-formed" in err.expected and err.line is not None


# ---- numactl, RDMA, lspci, MIG, labels ------------------------------------------------


def test_numactl_truncated(tmp_path: Path) -> None:
    text = "available: 2 nodes (0-1)\nnode 0 cpus: 0 1\nnode 0 size: 1024 MB\n"
    err = parse_error(tmp_path, text)
    assert "missing [1]" in str(err) and err.line == 1


def test_numactl_distance_table_not_square(tmp_path: Path) -> None:
    text = (
        "available: 2 nodes (0-1)\nnode 0 cpus: 0\nnode 1 cpus: 1\nnode distances:\n"
        "node   0   1\n  0:  10  21\n  1:  21\n"
    )
    err = parse_error(tmp_path, text)
    assert err.line == 7 and "square" in err.expected


def test_ibstat_garbage_line(tmp_path: Path) -> None:
    text = "CA 'mlx5_0'\n\tCA type: MT4129\n\tthis is not ibstat\n"
    err = parse_error(tmp_path, text)
    assert err.line == 3 and "ibstat" in err.expected


def test_plain_lspci_without_ids_is_read_by_names_with_a_note(tmp_path: Path) -> None:
    # Issue #15: a saved plain `lspci` cannot be rerun with -nn; it is read, not refused.
    text = "0000:01:00.0 3D controller: NVIDIA Corporation GA100 [A100 SXM4 80GB] (rev a1)\n"
    result = discover_dir(write(tmp_path, text))
    assert [g.model for g in result.profile.spec.gpus] == ["A100-SXM4-80GB"]
    note = next(n for n in result.notes if "ids are missing" in n.message)
    assert note.source.endswith("out.txt") and note.line == 1 and "lspci -nn" in note.message


def test_plain_lspci_device_number_gives_the_model(tmp_path: Path) -> None:
    # pci.ids too old to name the chip: lspci prints "Device 2330" (siderolabs/talos#9121).
    text = "1a:00.0 3D controller: NVIDIA Corporation Device 2330 (rev a1)\n"
    spec = discover_dir(write(tmp_path, text)).profile.spec
    assert [(g.model, g.pci_bus_id) for g in spec.gpus] == [("H100-SXM5-80GB", "0000:1a:00.0")]


def test_lspci_line_that_is_neither_form_is_skipped_with_its_line(tmp_path: Path) -> None:
    text = (
        "0000:01:00.0 3D controller: NVIDIA Corporation GA100 [A100 SXM4 80GB] (rev a1)\n"
        "0000:02:00.0 3D controller: NVIDIA Corporation GA100 [A100 SXM4 80GB] (rev a1)\n"
        "0000:03:00.0 ???\n"
    )
    result = discover_dir(write(tmp_path, text))
    assert len(result.profile.spec.gpus) == 2
    note = next(n for n in result.notes if "not an lspci line" in n.message)
    assert note.line == 3 and "0000:03:00.0 ???" in note.message


# ---- Grace topologies and AMD outputs ----------------------------------------------------

GB200_TOPO = FIXTURES / "topo-gb200-nvl-tray-4gpu-8nic-gpu-numa-id.txt"


def test_gb200_numa_affinity_list_is_read_not_refused(tmp_path: Path) -> None:
    spec = discover_dir(write(tmp_path, GB200_TOPO.read_text(encoding="utf-8"))).profile.spec
    assert [g.numa_node for g in spec.gpus] == [0, 0, 1, 1]
    assert [(n.id, n.kind, n.gpu) for n in spec.memory_numa_nodes] == [
        (2, "gpu-memory", 0),
        (10, "gpu-memory", 1),
        (18, "gpu-memory", 2),
        (26, "gpu-memory", 3),
    ]


def test_bad_numa_affinity_list_names_the_line(tmp_path: Path) -> None:
    lines = lines_of(GB200_TOPO)
    at = row_index(lines, "GPU1")
    lines[at] = lines[at].replace("0,3-9,11-17", "0,3-x,11")
    err = parse_error(tmp_path, "\n".join(lines))
    assert err.line == at + 1 and "NUMA Affinity" in err.expected and err.found == "0,3-x,11"


def test_unknown_affinity_column_is_skipped_with_a_note(tmp_path: Path) -> None:
    text = (
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\tFuture Column\n"
        "GPU0\t X \tNV18\t0-35\t0\t\tN/A\t7\n"
        "GPU1\tNV18\t X \t0-35\t0\t\tN/A\t7\n"
    )
    result = discover_dir(write(tmp_path, text))
    assert len(result.profile.spec.gpus) == 2
    note = next(n for n in result.notes if "Future Column" in n.message)
    assert note.line == 1


def test_tab_separated_empty_cpu_affinity_of_a_grace_gpu(tmp_path: Path) -> None:
    # GB200 rows where the GPU's node has no CPUs print an empty CPU affinity between tabs.
    text = (
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
        "GPU0\t X \tNV18\t0-35\t0\t\tN/A\n"
        "GPU1\tNV18\t X \t\t1\t\tN/A\n"
    )
    facts, _ = parse_text("out.txt", text)
    assert [(g.numa_node, g.cpu_affinity) for g in facts.gpus] == [
        (0, frozenset(range(36))),
        (1, None),
    ]


def test_rocm_smi_matrix_row_too_short(tmp_path: Path) -> None:
    text = (
        "=============== Link Type between two GPUs ===============\n"
        "       GPU0         GPU1\n"
        "GPU0   0            XGMI\n"
        "GPU1   XGMI\n"
    )
    err = parse_error(tmp_path, text)
    assert err.line == 4 and "2 values in row GPU1" in err.expected


def test_rocm_smi_unknown_section_is_skipped_with_a_note(tmp_path: Path) -> None:
    text = (
        "========= ROCm System Management Interface =========\n"
        "========= Shiny New Section =========\n"
        "GPU[0]          : Something: 42\n"
        "========= Numa Nodes =========\n"
        "GPU[0]          : (Topology) Numa Node: 0\n"
    )
    result = discover_dir(write(tmp_path, text))
    assert [g.numa_node for g in result.profile.spec.gpus] == [0]
    assert any(n.line == 2 and "Shiny New Section" in n.message for n in result.notes)


def test_amd_smi_topology_without_addresses(tmp_path: Path) -> None:
    text = "LINK TYPE TABLE:\n  GPU0 GPU1\n"
    err = parse_error(tmp_path, text)
    assert err.line == 2 and "PCI addresses" in err.expected


def test_mig_device_before_its_gpu(tmp_path: Path) -> None:
    text = (
        "  MIG 1g.10gb     Device  0: (UUID: MIG-1)\nGPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n"
    )
    assert "before MIG devices" in str(parse_error(tmp_path, text))


def test_labels_with_a_non_numeric_count(tmp_path: Path) -> None:
    text = '{"nvidia.com/gpu.product": "NVIDIA-L4", "nvidia.com/gpu.count": "many"}\n'
    assert "nvidia.com/gpu.count" in str(parse_error(tmp_path, text))


# ---- files that are not outputs at all, and sources that disagree ---------------------


def test_empty_binary_and_unknown_files_are_skipped_with_notes(tmp_path: Path) -> None:
    write(tmp_path, "", "empty.txt")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    write(tmp_path, "hello, world\nnothing to see\n", "notes.txt")
    result = discover_dir(tmp_path)
    text = "\n".join(str(n) for n in result.notes)
    assert "binary file; skipped" in text and "no known command output" in text
    assert result.profile.spec.gpus == [] and "no GPU found" in text


def test_sources_that_disagree_on_the_gpu_count_are_noted(tmp_path: Path) -> None:
    (tmp_path / "topo").write_bytes(A100_TOPO.read_bytes())
    write(
        tmp_path,
        "GPU 0: NVIDIA A100-SXM4-80GB (UUID: GPU-1)\nGPU 1: NVIDIA A100-SXM4-80GB (UUID: GPU-2)\n",
        "list",
    )
    result = discover_dir(tmp_path)
    assert len(result.profile.spec.gpus) == 8
    assert any("disagree on the GPU count" in n.message for n in result.notes)


def test_every_fixture_at_once_does_not_crash() -> None:
    """Outputs of thirty different machines: many disagreements, each noted, no exception."""
    result = discover_dir(FIXTURES)
    assert result.profile.spec.gpus
    assert any("disagree" in n.message for n in result.notes)


def test_provenance_lines_are_skipped_but_shell_comments_kept() -> None:
    text = Text.of(
        "f", "# source: x\n# machine: y\n# command: lscpu -p\n# CPU,Core,Socket,Node\n0,0,0,0\n"
    )
    stripped = strip_provenance(text)
    assert stripped.lines[0] == "# CPU,Core,Socket,Node" and stripped.first_line == 4
    facts, pieces = parse_text("f", text.body)
    assert [p.kind for p in pieces] == ["lscpu -p"] and facts.cpus[0].logical_cpus == 1


# ---- found by tests/property/test_parser_fuzz.py: each crashed or lost its line before ------

NCCL_XML = FIXTURES / "nccl-topo-xml-azure-ndv4.xml"


def test_nccl_xml_bad_attribute_names_its_line(tmp_path: Path) -> None:
    lines = lines_of(NCCL_XML)
    at = next(i for i, line in enumerate(lines) if "<cpu " in line)
    lines[at] = lines[at].replace('numaid="', 'numaid="x', 1)
    err = parse_error(tmp_path, "\n".join(lines))
    assert err.line == at + 1 and "numeric numaid" in err.expected


def test_query_xml_gpu_without_product_name_names_its_line(tmp_path: Path) -> None:
    path = FIXTURES / "nvidia-smi-q-x-a100-sxm4-40gb-mig-enabled.xml"
    lines = lines_of(path)
    at = next(i for i, line in enumerate(lines) if "<product_name>" in line)
    gpu_at = max(i for i in range(at) if "<gpu " in lines[i])
    del lines[at]
    err = parse_error(tmp_path, "\n".join(lines))
    assert err.line == gpu_at + 1 and "<product_name>" in err.expected


def test_mig_profile_name_that_is_not_one_is_skipped_with_a_note(tmp_path: Path) -> None:
    text = (
        "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1)\n"
        "  MIG 0     Device  0: (UUID: MIG-1)\n"
        "  MIG 1g.10gb     Device  1: (UUID: MIG-2)\n"
    )
    result = discover_dir(write(tmp_path, text))
    assert [d.profile for d in result.profile.spec.gpus[0].mig_devices] == ["1g.10gb"]
    assert any("not of the form 1g.10gb" in n.message for n in result.notes)


def test_ibstat_negative_rate_names_its_line(tmp_path: Path) -> None:
    text = "CA 'mlx5_0'\n\tCA type: MT4129\n\tPort 1:\n\t\tState: Active\n\t\tRate: -200\n"
    err = parse_error(tmp_path, text)
    assert err.line == 5 and "rate" in err.expected


def test_numa_node_beyond_the_wire_bound_names_its_line(tmp_path: Path) -> None:
    lines = lines_of(GB200_TOPO)
    at = row_index(lines, "GPU3")
    lines[at] = lines[at].replace("1,19-25,27-33", "99999")
    err = parse_error(tmp_path, "\n".join(lines))
    assert err.line == at + 1 and "0 to 1023" in err.expected


def test_gpu_index_beyond_the_wire_bound_is_skipped_with_a_note(tmp_path: Path) -> None:
    text = (FIXTURES / "rocm-smi-concise-8x-mi300x.txt").read_text(encoding="utf-8")
    text = text.replace("\n7       [0x74a1", "\n99999   [0x74a1")
    result = discover_dir(write(tmp_path, text))
    assert len(result.profile.spec.gpus) == 7
    assert any("GPU index 99999 is out of range" in n.message for n in result.notes)


def test_query_text_grace_blackwell_fields_are_tolerated(tmp_path: Path) -> None:
    # Synthetic input (no public GB200 `nvidia-smi -q` capture was found): the documented
    # -q layout with the fields Grace drivers add (Addressing Mode, Fabric) and N/A values.
    text = (
        "==============NVSMI LOG==============\n\n"
        "Driver Version                            : 580.105.08\n"
        "Attached GPUs                             : 1\n"
        "GPU 00000008:01:00.0\n"
        "    Product Name                          : NVIDIA GB200\n"
        "    Product Architecture                  : Blackwell\n"
        "    Addressing Mode                       : ATS\n"
        "    MIG Mode\n"
        "        Current                           : N/A\n"
        "    Serial Number                         : N/A\n"
        "    FB Memory Usage\n"
        "        Total                             : 189471 MiB\n"
        "        Reserved                          : N/A\n"
        "    Fabric\n"
        "        State                             : Completed\n"
        "        CliqueId                          : 1\n"
        "    GPU Power Readings\n"
        "        Default Power Limit               : N/A\n"
    )
    g = discover_dir(write(tmp_path, text)).profile.spec.gpus[0]
    assert (g.model, g.memory_gib, g.pci_bus_id) == ("GB200-186GB", 185.03, "0008:01:00.0")
