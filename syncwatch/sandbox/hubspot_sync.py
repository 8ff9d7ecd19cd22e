"""The pretend connectors' HubSpot side: a due Marketo person or Account Engagement prospect
becomes a HubSpot contact, with that connector's mapping, owned by the scenario's owner.

Neither vendor documents a sync to HubSpot: Marketo's native CRM syncs are Salesforce and
Microsoft Dynamics, Account Engagement's is Salesforce. Such setups run a middleware (an iPaaS
recipe, a custom job) that reads new people and creates HubSpot contacts through the CRM API;
that is what this stands for (unconfirmed as a whole: mapping, cadence, error handling are the
builder's). Like the API, it keys contacts by email: a live contact with the email is updated,
not duplicated. The connector faults (``drop``, ``corrupt``, ``validation``, ``duplicate``) fire
for vendor ``hubspot`` (or for no vendor); refusals land in the engine's error log in HubSpot's
words (the CRM ``Error`` categories): ``validation`` as ``VALIDATION_ERROR``/``REQUIRED_FIELD``,
``duplicate`` as the second create's 409 ``CONFLICT`` (HubSpot keeps one contact per email).
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from syncwatch.sandbox.world import Contact, World

if TYPE_CHECKING:
    from syncwatch.sandbox.sync import PendingSync, SyncEngine

VENDOR = "hubspot"
OWNER = "hubspot_owner_id"


def deliver(engine: SyncEngine, item: PendingSync, at: datetime) -> None:
    """Create (or update) the contact ``item`` stands for, unless its source is gone or a fault
    intervenes; the contact's ``createdate`` is the due time ``at``."""
    world = engine.world
    properties = mapped(world, item)
    if properties is None:
        return  # deleted at the source before it synced: the connector has nothing to send
    faults = world.faults
    if faults.fire("drop", VENDOR, at):
        engine.dropped += 1
        return
    if (corrupt := faults.fire("corrupt", VENDOR, at)) and corrupt.spec.field:
        properties[corrupt.spec.field] = corrupt.spec.value
    entry = {"contact_id": item.contact_id, "source": item.source, "at": at.isoformat()}
    rule = faults.fire("validation", VENDOR, at)
    if rule and (rule.spec.field is None or not properties.get(rule.spec.field)):
        field = rule.spec.field or "email"
        message = f"Property values were not valid: {field} is required"
        engine.errors.append(
            {**entry, "destination": VENDOR, "category": "VALIDATION_ERROR", "message": message}
        )
        return
    contact = _upsert(world, properties, f"{item.source}:{item.contact_id}", at)
    if faults.fire("duplicate", VENDOR, at):
        message = f"Contact already exists. Existing ID: {contact.id}"
        engine.errors.append(
            {**entry, "destination": VENDOR, "category": "CONFLICT", "message": message}
        )
    engine.delivered += 1


def mapped(world: World, item: PendingSync) -> dict[str, str] | None:
    """The queued record's values under HubSpot property names, with the owner; None when the
    record is gone (or has no email: the connector cannot key a contact without one)."""
    spec = world.scenario.hubspot
    if item.source == "pardot":
        prospect = world.pardot_prospects.get(int(item.contact_id))
        if prospect is None or prospect.deleted_at is not None:
            return None
        fields, mapping = prospect.fields, spec.pardot_mapping
    else:
        lead = world.marketo_leads.get(int(item.contact_id))
        if lead is None:
            return None
        fields, mapping = lead.fields, spec.marketo_mapping
    properties = {
        target: str(fields[name])
        for name, target in mapping.items()
        if fields.get(name) not in (None, "")
    }
    if not properties.get("email"):
        return None
    return {**properties, OWNER: spec.default_owner_id}


def _upsert(world: World, properties: dict[str, str], origin: str, at: datetime) -> Contact:
    existing = world.contact_by_email(properties["email"])
    if existing is None:
        return world.new_contact(properties, origin, created_at=at)
    existing.properties.update(properties)
    existing.updated_at = max(existing.updated_at, at)
    return existing
