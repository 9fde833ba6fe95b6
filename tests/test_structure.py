"""The shape of the code that a newcomer relies on: no import cycles (late imports counted), a main
window that only lays out and wires, one route for worker messages, and every signal listened to."""
import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "gui")


def project_modules() -> dict[str, pathlib.Path]:
    modules = {"main": ROOT / "main.py"}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def imports_of(name: str, path: pathlib.Path, modules) -> set[str]:
    """Project modules `name` imports anywhere in its text (inside functions too)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not (path.name == "__init__.py" and target.startswith(name + ".")):
                found.add(target)
    return found


def test_no_import_cycles_counting_imports_inside_functions():
    modules = project_modules()
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    cycles = []

    def reaches(start, goal, seen):
        for nxt in graph[start]:
            if nxt == goal:
                return [start, goal]
            if nxt not in seen:
                seen.add(nxt)
                path = reaches(nxt, goal, seen)
                if path:
                    return [start] + path
        return None

    for name in graph:
        cycle = reaches(name, name, set())
        if cycle:
            cycles.append(" -> ".join(cycle))
    assert not cycles, cycles


def test_no_source_file_is_over_500_lines():
    """A file a newcomer can hold in their head: the engine, the window, the API, the benchmarks, the docs' scripts."""
    folders = [ROOT / "engine", ROOT / "gui", ROOT / "rnn_gradient_lab", ROOT / "benchmarks", ROOT / "docs"]
    files = [ROOT / "main.py"] + [p for folder in folders for p in folder.rglob("*.py")]
    long = {str(p.relative_to(ROOT)): n for p in files if (n := len(p.read_text(encoding="utf-8").splitlines())) > 500}
    assert not long, long


def test_the_main_window_lays_out_and_wires_and_never_talks_to_the_worker():
    path = ROOT / "gui" / "main_window.py"
    assert len(path.read_text(encoding="utf-8").splitlines()) <= 500
    imported = imports_of("gui.main_window", path, project_modules())
    assert not imported & {"gui.worker_client", "engine.worker"}, imported


def test_worker_messages_take_one_route_and_the_window_needs_no_attribute_to_appear_in_time():
    gui = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "gui").rglob("*.py"))
    # posted layout requests alone may be delivered early (lecture mode gives back the window's size); any other
    # sendPostedEvents would be a second route for the worker's messages
    gui = gui.replace("sendPostedEvents(None, QEvent.Type.LayoutRequest)", "")
    for patched in ("sendPostedEvents", "_seen_infos", "current_runs", "take_updates"):
        assert patched not in gui, patched
    window = (ROOT / "gui" / "main_window.py").read_text(encoding="utf-8")
    assert "hasattr(self," not in window and "getattr(self," not in window


def test_every_signal_the_app_declares_is_listened_to_by_the_app():
    sources = {p: p.read_text(encoding="utf-8") for p in (ROOT / "gui").rglob("*.py")}
    everything = "\n".join(sources.values())
    unheard = []
    for path, text in sources.items():
        for name in re.findall(r"^\s+(\w+) = Signal\(", text, flags=re.M):
            if not re.search(rf"\.{name}\.connect\(", everything):
                unheard.append(f"{path.name}: {name}")
    assert not unheard, unheard


def test_colours_live_in_the_theme_alone():
    offenders = []
    for path in (ROOT / "gui").rglob("*.py"):
        if path.name == "theme.py":
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#  ")[0]
            if re.search(r"['\"]#[0-9a-fA-F]{6}\b", code):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert not offenders, offenders
