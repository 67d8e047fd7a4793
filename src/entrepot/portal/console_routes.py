"""The routes of the provider's pages, webhooks and the admin console (issue 11, phase 2),
listed by routes.py after the consumer's."""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from entrepot.portal.pages import admin, audit, datasets, imports, webhooks


def routes() -> list[BaseRoute]:
    get, post = ["GET"], ["POST"]
    return [
        Route("/datasets", datasets.datasets_list, methods=get),
        Route("/datasets", datasets.create, methods=post),
        Route("/datasets/new", datasets.new_form, methods=get),
        Route("/datasets/new/check", datasets.check_new, methods=post),
        Route("/datasets/{name}/edit", datasets.edit_form, methods=get),
        Route("/datasets/{name}/edit", datasets.update, methods=post),
        Route("/datasets/{name}/edit/check", datasets.check_edit, methods=post),
        Route("/datasets/{name}/import", imports.import_form, methods=get),
        Route("/datasets/{name}/import", imports.run_import, methods=post),
        Route("/audit", audit.audit_log, methods=get),
        Route("/audit/export", audit.audit_export, methods=get),
        Route("/webhooks", webhooks.webhooks_list, methods=get),
        Route("/webhooks", webhooks.create_webhook, methods=post),
        Route("/webhooks/{hook}", webhooks.webhook_detail, methods=get),
        Route("/webhooks/{hook}/state", webhooks.set_webhook_state, methods=post),
        Route("/webhooks/{hook}/rotate-secret", webhooks.rotate_webhook_secret, methods=post),
        Route("/webhooks/{hook}/delete", webhooks.delete_webhook, methods=post),
        Route("/webhooks/{hook}/replay", webhooks.replay, methods=post),
        Route(
            "/webhooks/{hook}/deliveries/{delivery}/retry", webhooks.retry_delivery, methods=post
        ),
        Route("/admin", admin.console, methods=get),
        Route("/admin/plans", admin.plans_page, methods=get),
        Route("/admin/plans", admin.create_plan, methods=post),
        Route("/admin/plans/assign", admin.assign_plan, methods=post),
        Route("/admin/orgs", admin.orgs_page, methods=get),
        Route("/admin/orgs", admin.create_org, methods=post),
        Route("/admin/users", admin.users_page, methods=get),
        Route("/admin/users", admin.create_user, methods=post),
        Route("/admin/users/{user}/state", admin.set_user_state, methods=post),
        Route("/admin/members", admin.add_member, methods=post),
    ]
