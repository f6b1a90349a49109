"""Operations tooling: deployment notes, PostgreSQL setup, benchmarks, load and crash harnesses."""
