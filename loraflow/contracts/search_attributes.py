"""loraflow's custom search attributes: how ops find trainings in the Temporal Web UI.

e.g. ``LoraStatus = "training"`` lists what is training now; ``LoraProgress`` sorts by progress.
They are registered when the embedded dev server starts; on a real cluster register them once
with ``temporal operator search-attribute create`` (see the README).
"""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

LORA_ID = SearchAttributeKey.for_keyword("LoraId")
LORA_USER_ID = SearchAttributeKey.for_keyword("LoraUserId")
LORA_STATUS = SearchAttributeKey.for_keyword("LoraStatus")
LORA_PROGRESS = SearchAttributeKey.for_int("LoraProgress")

SEARCH_ATTRIBUTES = (LORA_ID, LORA_USER_ID, LORA_STATUS, LORA_PROGRESS)
