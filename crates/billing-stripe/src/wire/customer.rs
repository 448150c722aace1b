//! Customers (`customer.created`, `customer.updated`, `customer.deleted`).

use billing_domain::facts::CustomerFacts;

use super::WireObject;
use super::field::{Field, Metadata, Scope, wire_struct};
use crate::error::WireError;

wire_struct! {
    /// A customer as sent; the same in every supported API version. `customer.deleted` carries
    /// the customer as it was before deletion.
    #[derive(Debug)]
    pub(super) struct RawCustomer {
        object: Field<String>,
        id: Field<String>,
        email: Field<String>,
        metadata: Field<Metadata>,
    }
}

impl WireObject for RawCustomer {
    type Facts = CustomerFacts;

    fn into_facts(self, scope: &Scope<'_>) -> Result<CustomerFacts, WireError> {
        scope.expect_object(&self.object, "customer")?;
        Ok(CustomerFacts {
            id: scope.object_id(&self.id, "id", &["cus_"])?,
            email: scope.string(&self.email, "email")?,
            metadata_user_id: scope.metadata_user_id(&self.metadata)?,
        })
    }
}
