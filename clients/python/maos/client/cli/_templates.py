"""`maosctl template ...`: save a task's spec under a name, list, show and delete templates.

Submitting from a template is `maosctl task submit-from-template NAME --params JSON`.
"""

from __future__ import annotations

import click

from ._catalog_views import template_created_text, template_dict, template_fields, template_table
from ._common import CliState, format_option, pass_state


@click.group("template")
def template_group() -> None:
    """Named task specs with {placeholders}, submitted again with new values."""


@template_group.command("create")
@click.argument("name")
@click.option("--from-task", "from_task", required=True, metavar="ID", help="Copy this task's spec.")
@click.option("--description", default="", metavar="TEXT", help="What the template is for.")
@format_option
@pass_state
def create(state: CliState, name: str, from_task: str, description: str) -> None:
    """Save the spec of task ID as the template NAME.

    `{placeholders}` in its description and in the string values of its input
    become the template's parameters.
    """
    template = state.client().create_template(name, from_task_id=from_task, description=description)
    state.emit(template_dict(template), lambda: template_created_text(template))


@template_group.command("list")
@format_option
@pass_state
def list_(state: CliState) -> None:
    """List the templates with their parameters."""
    templates = state.client().list_templates()
    state.emit([template_dict(t) for t in templates], lambda: template_table(templates))


@template_group.command("show")
@click.argument("name")
@format_option
@pass_state
def show(state: CliState, name: str) -> None:
    """Show a template: its parameters and the task spec it submits."""
    template = state.client().get_template(name)
    state.emit(template_dict(template), lambda: template_fields(template))


@template_group.command("delete")
@click.argument("name")
@format_option
@pass_state
def delete(state: CliState, name: str) -> None:
    """Delete the template NAME."""
    template = state.client().delete_template(name)
    state.emit(template_dict(template), lambda: f"deleted template {template.name}")
