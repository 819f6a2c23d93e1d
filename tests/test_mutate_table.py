"""make mutate's table (tools/mutate.py TESTS) keeps up with the code: every
board module has a row, and every test a row names exists (a renamed test
would otherwise make that module's mutants all "killed" by a pytest error)."""
import ast
import os

from tools.sim.harness import REPO


def mutate_table():
    tree = ast.parse(open(os.path.join(REPO, 'tools', 'mutate.py')).read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ['TESTS']:
            return ast.literal_eval(node.value)
    raise AssertionError('no TESTS table in tools/mutate.py')


def test_every_board_module_has_its_tests_and_every_named_test_exists():
    table = mutate_table()
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(REPO, 'firmware'))
                     if name.endswith('.py') and name != '__init__.py')
    assert sorted(table) == modules
    defined = {}                # test file -> the functions it defines
    for module, tests in table.items():
        assert tests, module
        for test in tests:
            path, _, name = test.partition('::')
            assert os.path.exists(os.path.join(REPO, path)), (module, test)
            if path not in defined:
                tree = ast.parse(open(os.path.join(REPO, path)).read())
                defined[path] = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
            assert not name or name in defined[path], (module, test)
