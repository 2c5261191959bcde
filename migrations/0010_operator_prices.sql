-- Operator prices managed through the API (/api/v1/admin/prices). A price row is a
-- version: its figures never change once written. Retiring a row sets retired_at (once);
-- a retired row prices nothing from then on, but stays, so the model calls costed with
-- it still name it and their figures stay reproducible. Works on PostgreSQL 15+ and PGlite.
ALTER TABLE model_prices ADD COLUMN created_by text REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE model_prices ADD COLUMN retired_at timestamptz;
ALTER TABLE model_prices ADD COLUMN retired_by text REFERENCES users (id) ON DELETE SET NULL;

-- One live row per (provider, pattern, valid_from, source): a retired row may be added again.
ALTER TABLE model_prices DROP CONSTRAINT model_prices_provider_model_pattern_valid_from_source_key;
CREATE UNIQUE INDEX model_prices_live_key ON model_prices (provider, model_pattern, valid_from, source)
  WHERE retired_at IS NULL;

-- The figures of a price row are never updated in place, and a retirement is final.
CREATE FUNCTION model_prices_versioned() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id
     OR NEW.provider IS DISTINCT FROM OLD.provider
     OR NEW.model_pattern IS DISTINCT FROM OLD.model_pattern
     OR NEW.valid_from IS DISTINCT FROM OLD.valid_from
     OR NEW.input_per_mtok IS DISTINCT FROM OLD.input_per_mtok
     OR NEW.cache_read_per_mtok IS DISTINCT FROM OLD.cache_read_per_mtok
     OR NEW.cache_write_per_mtok IS DISTINCT FROM OLD.cache_write_per_mtok
     OR NEW.output_per_mtok IS DISTINCT FROM OLD.output_per_mtok
     OR NEW.source IS DISTINCT FROM OLD.source
     OR NEW.created_at IS DISTINCT FROM OLD.created_at
     OR OLD.retired_at IS NOT NULL THEN
    RAISE EXCEPTION 'model_prices rows are versions: add a new row instead of changing %', OLD.id
      USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER model_prices_versioned_on_update
  BEFORE UPDATE ON model_prices
  FOR EACH ROW EXECUTE FUNCTION model_prices_versioned();

-- The recompute route finds a window's model calls of one provider and model.
CREATE INDEX model_calls_provider_model_started_idx ON model_calls (provider, request_model, started_at);
