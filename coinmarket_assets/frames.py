"""``Frame``, the type of the asset functions' DataFrames, without importing pandas at load.

Dagster resolves an asset function's annotations when the code location loads; naming
``pandas.DataFrame`` there would import pandas (about 0.2 s) into every process that loads
the definitions, the UI and the daemon included. Type checkers see ``pandas.DataFrame``;
Dagster sees ``Any`` and leaves the type check to the IO manager, which takes DataFrames only.
"""

from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from pandas import DataFrame as Frame
else:
    Frame: TypeAlias = Any
