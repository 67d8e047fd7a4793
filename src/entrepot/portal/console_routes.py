"""The pages of the provider, the webhooks and the admin console (issue 11, phase 2):
``(path under /portal, method, page)``, made routes by routes.py after the consumer's."""

from __future__ import annotations

from entrepot.portal.pages import admin, audit, datasets, imports, webhooks
from entrepot.portal.web import Endpoint

PAGES: list[tuple[str, str, Endpoint]] = [
    ("/datasets", "GET", datasets.datasets_list),
    ("/datasets", "POST", datasets.create),
    ("/datasets/new", "GET", datasets.new_form),
    ("/datasets/new/check", "POST", datasets.check_new),
    ("/datasets/{name}/edit", "GET", datasets.edit_form),
    ("/datasets/{name}/edit", "POST", datasets.update),
    ("/datasets/{name}/edit/check", "POST", datasets.check_edit),
    ("/datasets/{name}/import", "GET", imports.import_form),
    ("/datasets/{name}/import", "POST", imports.run_import),
    ("/audit", "GET", audit.audit_log),
    ("/audit/export", "GET", audit.audit_export),
    ("/webhooks", "GET", webhooks.webhooks_list),
    ("/webhooks", "POST", webhooks.create_webhook),
    ("/webhooks/{hook}", "GET", webhooks.webhook_detail),
    ("/webhooks/{hook}/state", "POST", webhooks.set_webhook_state),
    ("/webhooks/{hook}/rotate-secret", "POST", webhooks.rotate_webhook_secret),
    ("/webhooks/{hook}/delete", "POST", webhooks.delete_webhook),
    ("/webhooks/{hook}/replay", "POST", webhooks.replay),
    ("/webhooks/{hook}/deliveries/{delivery}/retry", "POST", webhooks.retry_delivery),
    ("/admin", "GET", admin.console),
    ("/admin/plans", "GET", admin.plans_page),
    ("/admin/plans", "POST", admin.create_plan),
    ("/admin/plans/assign", "POST", admin.assign_plan),
    ("/admin/orgs", "GET", admin.orgs_page),
    ("/admin/orgs", "POST", admin.create_org),
    ("/admin/users", "GET", admin.users_page),
    ("/admin/users", "POST", admin.create_user),
    ("/admin/users/{user}/state", "POST", admin.set_user_state),
    ("/admin/members", "POST", admin.add_member),
]
