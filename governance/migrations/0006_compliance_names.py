"""One name per concept (issue 15): a product's standing against a policy is its compliance
(the page, the API, the MCP tool), and a quality run's check is its `quality_check`. Renames
only: the tables are renamed, no row changes; `quality_check` keeps the column `check_id`."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("governance", "0005_verbose_plurals"),
        ("products", "0010_verbose_plurals"),
    ]

    operations = [
        migrations.RenameModel("PolicyStatus", "Compliance"),
        migrations.RenameModel("PolicyResult", "ComplianceChange"),
        migrations.RenameField("QualityRun", "check_obj", "quality_check"),
        # The partial unique index names the field: the same index, recreated under the name.
        migrations.RemoveConstraint(
            model_name="qualityrun", name="qualityrun_one_active_per_check"
        ),
        migrations.AddConstraint(
            model_name="qualityrun",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status__in", ["queued", "running"])),
                fields=("quality_check",),
                name="qualityrun_one_active_per_check",
            ),
        ),
        migrations.AlterModelOptions(
            name="compliance",
            options={"verbose_name": "compliance", "verbose_name_plural": "compliance"},
        ),
        migrations.AlterField(
            model_name="compliance",
            name="policy",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="compliance",
                to="governance.policy",
            ),
        ),
        migrations.AlterField(
            model_name="compliance",
            name="product",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="compliance",
                to="products.dataproduct",
            ),
        ),
        migrations.AlterField(
            model_name="compliancechange",
            name="policy",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="compliance_changes",
                to="governance.policy",
            ),
        ),
        migrations.AlterField(
            model_name="compliancechange",
            name="run",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="compliance_changes",
                to="governance.evaluationrun",
            ),
        ),
    ]
