-- A search by region usually filters by customer classification as well. Carried in the
-- region index, the classification is checked on the index entry, and the meters of other
-- classes are never read from the table (on PostgreSQL a third of the table reads of a
-- region and class search).
DROP INDEX meters_by_region;
CREATE INDEX meters_by_region
    ON meters (partner_id, transmission_region, id, customer_classification,
               global_enrollment_status, partner_action_required);
