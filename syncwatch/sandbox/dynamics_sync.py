"""The pretend connectors' Dynamics 365 side: a due HubSpot contact or Marketo person becomes a
Dataverse row, with that connector's mapping, owned by the connector's sync user.

HubSpot's integration writes a lead or a contact (the scenario's ``sync.sobject``: Lead → lead,
Contact → contact); Marketo's "Sync Person to Microsoft" creates a lead. The connector faults
(``drop``, ``corrupt``, ``validation``, ``duplicate``) fire for vendor ``dynamics`` (or for no
vendor). A rejected row lands in the engine's error log, as a sync-error report would show it.

Sources: Marketo's default Dynamics field mapping and "Sync Person to Microsoft" (repo
AdobeDocs/marketo.en, ``help/marketo/product-docs/crm-sync/microsoft-dynamics-sync/
microsoft-dynamics-sync-details/default-dynamics-field-mapping.md`` and
``microsoft-dynamics-sync-lead-sync.md``); HubSpot's mapping is unconfirmed (``dynamics_spec``).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from syncwatch.sandbox.world import World

if TYPE_CHECKING:
    from syncwatch.sandbox.sync import PendingSync, SyncEngine

VENDOR = "dynamics"
PLUGIN_CODE = "0x80040265"
"""The documented code of a plug-in's refusal (``compose-http-requests-handle-errors.md``)."""


def deliver(engine: SyncEngine, item: PendingSync, at: datetime) -> None:
    """Create the row ``item`` stands for, unless its source is gone or a fault intervenes."""
    world = engine.world
    source = mapped(world, item)
    if source is None:
        return  # deleted at the source before it synced: the connector has nothing to send
    fields, entity = source
    faults = world.faults
    if faults.fire("drop", VENDOR, at):
        engine.dropped += 1
        return
    if (corrupt := faults.fire("corrupt", VENDOR, at)) and corrupt.spec.field:
        fields[corrupt.spec.field] = corrupt.spec.value or None
    rule = faults.fire("validation", VENDOR, at)
    if rule and (rule.spec.field is None or not fields.get(rule.spec.field)):
        entry = {"contact_id": item.contact_id, "source": item.source, "at": at.isoformat()}
        message = f"{entity} rejected by plug-in syncwatch_sandbox_rule"
        engine.errors.append(
            {**entry, "destination": VENDOR, "code": PLUGIN_CODE, "message": message}
        )
        return
    copies = 2 if faults.fire("duplicate", VENDOR, at) else 1
    for _ in range(copies):
        world.new_dataverse_record(entity, fields, at, f"{item.source}:{item.contact_id}")
    engine.delivered += 1


def mapped(world: World, item: PendingSync) -> tuple[dict[str, Any], str] | None:
    """The queued record's columns under Dataverse names, and the entity it becomes."""
    spec = world.scenario.dynamics
    if item.source == "marketo":
        lead = world.marketo_leads.get(int(item.contact_id))
        if lead is None:
            return None
        return _owned(world, _map(lead.fields, spec.marketo_mapping)), "lead"
    contact = world.contacts.get(item.contact_id)
    if contact is None or contact.archived_at is not None:
        return None
    entity = "contact" if world.scenario.sync.sobject == "Contact" else "lead"
    fields = _map(contact.properties, spec.hubspot_mapping)
    if entity == "contact":
        fields.pop("companyname", None)  # a contact has no such column (its account is a lookup)
    return _owned(world, fields), entity


def _map(source: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    return {
        target: source[name]
        for name, target in mapping.items()
        if source.get(name) not in (None, "")
    }


def _owned(world: World, fields: dict[str, Any]) -> dict[str, Any]:
    return {**fields, "_ownerid_value": world.scenario.dynamics.default_owner_id}
