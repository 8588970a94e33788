import pytest

from helpers import tiny_dconfig_obj


@pytest.fixture(params=["memorygan", "ssg"])
def arch(request):
    return request.param


@pytest.fixture
def tiny_dconfig():
    return tiny_dconfig_obj()
