"""Session and organization pages: sign out, switch organization."""

from __future__ import annotations

from litestar import Controller, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect

from segmently.dashboard.errors import PAGE_ERRORS
from segmently.dashboard.frame import HOME, redirect, signed_out
from segmently.domain.accounts import services
from segmently.http.deps import CurrentActor, DbSession


class OrganizationPages(Controller):
    """What the header menus and the rest of the navigation lead to."""

    path = "/"
    include_in_schema = False
    exception_handlers = PAGE_ERRORS

    @post("/logout", name="dashboard:logout")
    async def logout(self, actor: CurrentActor, db_session: DbSession) -> Redirect:
        """Sign out: this and every other session of the user ends."""
        await services.logout(db_session, actor.require_user())
        return signed_out(redirect("/login"))

    @post("/organizations/{organization_id:str}/switch", name="dashboard:switch-organization")
    async def switch(
        self, organization_id: FromPath[str], actor: CurrentActor, db_session: DbSession
    ) -> Redirect:
        """Act in another of your organizations from now on (as the API's ``switchOrganization``)."""
        user = actor.require_user()
        for org, _ in await services.memberships(db_session, user.id):
            if org.id == organization_id:
                user.current_organization_id = org.id
                db_session.add(user)
                return redirect(HOME)
        raise NotFoundException("You are not a member of this organization")
