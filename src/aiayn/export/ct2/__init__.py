"""aiayn.export.ct2: our models in CTranslate2 (`aiayn export --format ct2`), and back to text.

- `write_ct2` (writer.py): the `ct2` export format; `AiaynConverter` (converter.py) builds the
  CTranslate2 `TransformerSpec` from our config and weights, or refuses a choice CTranslate2
  cannot express, by name.
- `Ct2Translator` (translator.py): translates raw text with an export folder.

Needs the optional extra `ct2` (`pip install -e ".[ct2]"`); importing this package does not
import ctranslate2, which is loaded only when a model is exported or a translator is made.
"""

from aiayn.export.ct2.translator import Ct2Translator
from aiayn.export.ct2.writer import write_ct2

__all__ = ["Ct2Translator", "write_ct2"]
