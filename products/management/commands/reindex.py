from django.core.management.base import BaseCommand

from products.discovery import embedding, pgvector, search, semantic
from products.models import DataProduct


class Command(BaseCommand):
    help = (
        "Rebuild the search index of every product: the full-text vectors (PostgreSQL) and the "
        "meaning vectors of semantic search (those whose text changed; all with --force)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="recompute every meaning vector, changed or not"
        )
        parser.add_argument(
            "--no-embeddings", action="store_true", help="only the full-text vectors"
        )

    def handle(self, *args, **options):
        products = DataProduct.objects.all()
        text = search.reindex(products)
        self.stdout.write(f"Full-text vectors: {text:,} products (PostgreSQL only).")
        if options["no_embeddings"]:
            return
        if not semantic.enabled():
            self.stdout.write(
                "Semantic search is off (MESH_SEMANTIC_SEARCH, or the `semantic` extra is not "
                "installed): no meaning vectors."
            )
            return
        if not pgvector.in_use() and pgvector.install(embedding.DIMENSIONS):
            self.stdout.write(
                "pgvector: the meaning vectors now have their column and index. Restart the web, "
                "worker and MCP processes: each decides once whether to use it."
            )
        n = semantic.embed(products, force=options["force"])
        self.stdout.write(self.style.SUCCESS(f"Meaning vectors: {n:,} products computed."))
        where = "PostgreSQL (pgvector)" if pgvector.in_use() else "memory (NumPy)"
        self.stdout.write(f"Nearest products are searched in {where}.")
